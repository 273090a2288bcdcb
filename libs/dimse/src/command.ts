/**
 * DIMSE command sets (PS3.7 section 9 and Annex E): always implicit VR little endian, group 0000.
 */
import type { DicomDict } from './contract.js';
import { DatasetError, decodeDataset, encodeDataset } from './dataset.js';
import { TransferSyntax } from './uids.js';

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

export function commandName(commandField: number): string {
  for (const [name, value] of Object.entries(CommandField)) if (value === commandField) return name.replace(/_/g, '-');
  return `0x${commandField.toString(16).padStart(4, '0')}`;
}

/** Pending statuses (0xFF00, 0xFF01). */
export function isPending(status: number): boolean {
  return status === 0xff00 || status === 0xff01;
}

/** LO values are at most 64 characters. */
export function truncateComment(comment: string): string {
  // eslint-disable-next-line no-control-regex
  const clean = comment.replace(/[\\\x00-\x1f]/g, ' ').trim();
  return clean.length > 64 ? clean.slice(0, 64) : clean;
}

export function encodeCommand(cmd: Command): Buffer {
  const d: DicomDict = {};
  const us = (key: string, v: number | undefined) => {
    if (v !== undefined) d[key] = { vr: 'US', Value: [v & 0xffff] };
  };
  const str = (key: string, vr: string, v: string | undefined) => {
    if (v !== undefined) d[key] = { vr, Value: [v] };
  };
  str('00000002', 'UI', cmd.affectedSopClassUid);
  str('00000003', 'UI', cmd.requestedSopClassUid);
  us('00000100', cmd.commandField);
  us('00000110', cmd.messageId);
  us('00000120', cmd.messageIdBeingRespondedTo);
  str('00000600', 'AE', cmd.moveDestination);
  us('00000700', cmd.priority);
  us('00000800', cmd.hasDataset ? DATASET_PRESENT : NO_DATASET);
  us('00000900', cmd.status);
  if (cmd.offendingElements?.length) d['00000901'] = { vr: 'AT', Value: cmd.offendingElements };
  if (cmd.errorComment !== undefined) str('00000902', 'LO', truncateComment(cmd.errorComment));
  us('00000903', cmd.errorId);
  str('00001000', 'UI', cmd.affectedSopInstanceUid);
  str('00001001', 'UI', cmd.requestedSopInstanceUid);
  us('00001002', cmd.eventTypeId);
  us('00001008', cmd.actionTypeId);
  us('00001020', cmd.remaining);
  us('00001021', cmd.completed);
  us('00001022', cmd.failed);
  us('00001023', cmd.warning);
  str('00001030', 'AE', cmd.moveOriginatorAeTitle);
  us('00001031', cmd.moveOriginatorMessageId);
  const body = encodeDataset(d, TransferSyntax.ImplicitVRLittleEndian);
  const groupLength = Buffer.alloc(12);
  groupLength.writeUInt16LE(0x0000, 0);
  groupLength.writeUInt16LE(0x0000, 2);
  groupLength.writeUInt32LE(4, 4);
  groupLength.writeUInt32LE(body.length, 8);
  return Buffer.concat([groupLength, body]);
}

export class CommandError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandError';
  }
}

export function decodeCommand(bytes: Buffer): Command {
  let d: DicomDict;
  try {
    d = decodeDataset(bytes, TransferSyntax.ImplicitVRLittleEndian, { maxDepth: 0 });
  } catch (e) {
    throw new CommandError(`malformed command set: ${e instanceof DatasetError ? e.message : String(e)}`);
  }
  for (const key of Object.keys(d)) {
    if (!key.startsWith('0000')) throw new CommandError(`element ${key} outside group 0000 in command set`);
  }
  const num = (key: string): number | undefined => {
    const v = d[key]?.Value?.[0];
    return typeof v === 'number' ? v : undefined;
  };
  const str = (key: string): string | undefined => {
    const v = d[key]?.Value?.[0];
    return typeof v === 'string' ? v : undefined;
  };
  const commandField = num('00000100');
  if (commandField === undefined) throw new CommandError('command set without Command Field (0000,0100)');
  const dataSetType = num('00000800');
  const cmd: Command = { commandField, hasDataset: dataSetType !== undefined && dataSetType !== NO_DATASET };
  const assign = <K extends keyof Command>(k: K, v: Command[K] | undefined) => {
    if (v !== undefined) cmd[k] = v;
  };
  assign('messageId', num('00000110'));
  assign('messageIdBeingRespondedTo', num('00000120'));
  assign('affectedSopClassUid', str('00000002'));
  assign('requestedSopClassUid', str('00000003'));
  assign('affectedSopInstanceUid', str('00001000'));
  assign('requestedSopInstanceUid', str('00001001'));
  assign('priority', num('00000700'));
  assign('status', num('00000900'));
  const offending = d['00000901']?.Value;
  if (offending?.length) cmd.offendingElements = offending.map(String);
  assign('errorComment', str('00000902'));
  assign('errorId', num('00000903'));
  assign('moveDestination', str('00000600'));
  assign('moveOriginatorAeTitle', str('00001030'));
  assign('moveOriginatorMessageId', num('00001031'));
  assign('remaining', num('00001020'));
  assign('completed', num('00001021'));
  assign('failed', num('00001022'));
  assign('warning', num('00001023'));
  assign('eventTypeId', num('00001002'));
  assign('actionTypeId', num('00001008'));
  return cmd;
}
