/**
 * DIMSE command sets (PS3.7 section 9 and Annex E): always implicit VR little endian, group 0000.
 */
import { parseTagKey, tagKey } from './dataset.js';

export const CommandField = {
  C_STORE_RQ: 0x0001,
  C_STORE_RSP: 0x8001,
  C_GET_RQ: 0x0010,
  C_GET_RSP: 0x8010,
  C_FIND_RQ: 0x0020,
  C_FIND_RSP: 0x8020,
  C_MOVE_RQ: 0x0021,
  C_MOVE_RSP: 0x8021,
  C_ECHO_RQ: 0x0030,
  C_ECHO_RSP: 0x8030,
  N_EVENT_REPORT_RQ: 0x0100,
  N_EVENT_REPORT_RSP: 0x8100,
  N_GET_RQ: 0x0110,
  N_GET_RSP: 0x8110,
  N_SET_RQ: 0x0120,
  N_SET_RSP: 0x8120,
  N_ACTION_RQ: 0x0130,
  N_ACTION_RSP: 0x8130,
  N_CREATE_RQ: 0x0140,
  N_CREATE_RSP: 0x8140,
  N_DELETE_RQ: 0x0150,
  N_DELETE_RSP: 0x8150,
  C_CANCEL_RQ: 0x0fff,
} as const;

export const Priority = { Medium: 0x0000, High: 0x0001, Low: 0x0002 } as const;

/** (0000,0800) value meaning "no data set". Any other value means a data set follows. */
export const NO_DATASET = 0x0101;
const DATASET_PRESENT = 0x0102;

/** A decoded command set. Only the fields the command carries are set. */
export interface Command {
  commandField: number;
  hasDataset: boolean;
  messageId?: number;
  messageIdBeingRespondedTo?: number;
  affectedSopClassUid?: string;
  requestedSopClassUid?: string;
  affectedSopInstanceUid?: string;
  requestedSopInstanceUid?: string;
  priority?: number;
  status?: number;
  offendingElements?: string[];
  errorComment?: string;
  errorId?: number;
  moveDestination?: string;
  moveOriginatorAeTitle?: string;
  moveOriginatorMessageId?: number;
  remaining?: number;
  completed?: number;
  failed?: number;
  warning?: number;
  eventTypeId?: number;
  actionTypeId?: number;
}

export function isResponse(commandField: number): boolean {
  return (commandField & 0x8000) !== 0;
}

const COMMAND_NAMES = new Map<number, string>(Object.entries(CommandField).map(([name, value]) => [value, name.replace(/_/g, '-')]));

export function commandName(commandField: number): string {
  return COMMAND_NAMES.get(commandField) ?? `0x${commandField.toString(16).padStart(4, '0')}`;
}

/** Pending statuses (0xFF00, 0xFF01). */
export function isPending(status: number): boolean {
  return status === 0xff00 || status === 0xff01;
}

/** LO values are at most 64 characters, in the default repertoire (others become "?"). */
export function truncateComment(comment: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = comment.replace(/[\\\x00-\x1f]/g, ' ').replace(/[^\x20-\x7e]/g, '?').trim();
  return clean.length > 64 ? clean.slice(0, 64) : clean;
}

type Vr = 'UI' | 'US' | 'AE' | 'LO' | 'AT';
type CommandKey = Exclude<keyof Command, 'hasDataset' | 'offendingElements'>;

/**
 * The command set's elements (group 0000) that Command carries, in tag order, with their VR.
 * (0000,0800) Command Data Set Type is written from `hasDataset`; (0000,0901) from
 * `offendingElements`.
 */
const ELEMENTS: readonly { element: number; vr: Vr; field?: CommandKey }[] = [
  { element: 0x0002, vr: 'UI', field: 'affectedSopClassUid' },
  { element: 0x0003, vr: 'UI', field: 'requestedSopClassUid' },
  { element: 0x0100, vr: 'US', field: 'commandField' },
  { element: 0x0110, vr: 'US', field: 'messageId' },
  { element: 0x0120, vr: 'US', field: 'messageIdBeingRespondedTo' },
  { element: 0x0600, vr: 'AE', field: 'moveDestination' },
  { element: 0x0700, vr: 'US', field: 'priority' },
  { element: 0x0800, vr: 'US' },
  { element: 0x0900, vr: 'US', field: 'status' },
  { element: 0x0901, vr: 'AT' },
  { element: 0x0902, vr: 'LO', field: 'errorComment' },
  { element: 0x0903, vr: 'US', field: 'errorId' },
  { element: 0x1000, vr: 'UI', field: 'affectedSopInstanceUid' },
  { element: 0x1001, vr: 'UI', field: 'requestedSopInstanceUid' },
  { element: 0x1002, vr: 'US', field: 'eventTypeId' },
  { element: 0x1008, vr: 'US', field: 'actionTypeId' },
  { element: 0x1020, vr: 'US', field: 'remaining' },
  { element: 0x1021, vr: 'US', field: 'completed' },
  { element: 0x1022, vr: 'US', field: 'failed' },
  { element: 0x1023, vr: 'US', field: 'warning' },
  { element: 0x1030, vr: 'AE', field: 'moveOriginatorAeTitle' },
  { element: 0x1031, vr: 'US', field: 'moveOriginatorMessageId' },
];
const ELEMENT_BY_TAG = new Map(ELEMENTS.map((e) => [e.element, e]));

/**
 * A command set in implicit VR little endian, written directly (one allocation): commands go
 * out once or twice per sub-operation, and the general data set encoder costs tens of µs each.
 * Strings are ASCII (UIDs, AE titles, truncateComment's comment), UI padded with NUL, others with
 * a space, as PS3.5 6.2 says.
 */
export function encodeCommand(cmd: Command): Buffer {
  const values: (string | number | string[] | undefined)[] = ELEMENTS.map(({ element, field }) => {
    if (element === 0x0800) return cmd.hasDataset ? DATASET_PRESENT : NO_DATASET;
    if (element === 0x0901) return cmd.offendingElements?.length ? cmd.offendingElements : undefined;
    if (element === 0x0902) return cmd.errorComment === undefined ? undefined : truncateComment(cmd.errorComment);
    return cmd[field!] as string | number | undefined;
  });
  let length = 12;
  for (let i = 0; i < ELEMENTS.length; i++) {
    const v = values[i];
    if (v === undefined) continue;
    const vr = ELEMENTS[i].vr;
    length += 8 + (vr === 'US' ? 2 : vr === 'AT' ? 4 * (v as string[]).length : evenLength(v as string));
  }
  const b = Buffer.allocUnsafe(length);
  b.writeUInt32LE(0x00000000, 0); // (0000,0000) Command Group Length, UL
  b.writeUInt32LE(4, 4);
  b.writeUInt32LE(length - 12, 8);
  let off = 12;
  for (let i = 0; i < ELEMENTS.length; i++) {
    const v = values[i];
    if (v === undefined) continue;
    const { element, vr } = ELEMENTS[i];
    b.writeUInt16LE(0x0000, off);
    b.writeUInt16LE(element, off + 2);
    if (vr === 'US') {
      b.writeUInt32LE(2, off + 4);
      b.writeUInt16LE((v as number) & 0xffff, off + 8);
      off += 10;
    } else if (vr === 'AT') {
      const tags = v as string[];
      b.writeUInt32LE(4 * tags.length, off + 4);
      off += 8;
      for (const t of tags) {
        const { group, element: e } = parseTagKey(t);
        b.writeUInt16LE(group, off);
        b.writeUInt16LE(e, off + 2);
        off += 4;
      }
    } else {
      const text = v as string;
      // eslint-disable-next-line no-control-regex
      if (!/^[\x00-\x7f]*$/.test(text)) throw new CommandError(`non-ASCII ${vr} value in command element (0000,${element.toString(16).padStart(4, '0')})`);
      const n = evenLength(text);
      b.writeUInt32LE(n, off + 4);
      b.write(text, off + 8, 'latin1');
      if (n > text.length) b[off + 8 + text.length] = vr === 'UI' ? 0x00 : 0x20;
      off += 8 + n;
    }
  }
  return b;
}

function evenLength(s: string): number {
  return s.length + (s.length & 1);
}

export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

/**
 * Reads a command set (implicit VR little endian, group 0000 only). Elements Command does not
 * carry are skipped; a value that overruns the command set, an element outside group 0000, a
 * US value of odd length, or a missing Command Field is an error.
 */
export function decodeCommand(bytes: Buffer): Command {
  const found: Partial<Record<CommandKey, string | number>> = {};
  let dataSetType: number | undefined;
  let offending: string[] | undefined;
  let off = 0;
  while (off < bytes.length) {
    if (off + 8 > bytes.length) throw new CommandError(`malformed command set: truncated element header at ${off}`);
    const group = bytes.readUInt16LE(off);
    const element = bytes.readUInt16LE(off + 2);
    const length = bytes.readUInt32LE(off + 4);
    if (group !== 0x0000) throw new CommandError(`element ${tagKey(group, element)} outside group 0000 in command set`);
    const start = off + 8;
    if (length === 0xffffffff || start + length > bytes.length) {
      throw new CommandError(`malformed command set: value of ${tagKey(group, element)} (${length} bytes) overruns the command set`);
    }
    off = start + length;
    const known = ELEMENT_BY_TAG.get(element);
    if (!known || length === 0) continue;
    if (known.vr === 'US') {
      if (length % 2 !== 0) throw new CommandError(`malformed command set: US value length ${length} is not a multiple of 2`);
      const v = bytes.readUInt16LE(start);
      if (element === 0x0800) dataSetType = v;
      else found[known.field!] = v;
    } else if (known.vr === 'AT') {
      if (length % 4 !== 0) throw new CommandError(`malformed command set: AT value length ${length} is not a multiple of 4`);
      offending = [];
      for (let p = start; p < off; p += 4) {
        offending.push(tagKey(bytes.readUInt16LE(p), bytes.readUInt16LE(p + 2)));
      }
    } else {
      const text = firstValue(bytes.toString('latin1', start, off), known.vr);
      if (text !== '') found[known.field!] = text;
    }
  }
  const commandField = found.commandField;
  if (typeof commandField !== 'number') throw new CommandError('command set without Command Field (0000,0100)');
  const cmd: Command = { commandField, hasDataset: dataSetType !== undefined && dataSetType !== NO_DATASET };
  for (const { field } of ELEMENTS) {
    if (field && field !== 'commandField' && found[field] !== undefined) (cmd as unknown as Record<string, unknown>)[field] = found[field];
  }
  if (offending?.length) cmd.offendingElements = offending;
  return cmd;
}

/** The first value of a string element, without its padding (UI: trailing NUL/space; others: both ends). */
function firstValue(text: string, vr: Vr): string {
  const cut = text.indexOf('\\');
  const first = cut < 0 ? text : text.slice(0, cut);
  return vr === 'UI' ? first.replace(/[\0 ]+$/, '') : first.replace(/\0+$/, '').trim();
}
