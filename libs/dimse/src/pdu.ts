/**
 * Upper layer PDUs (PS3.8 section 9.3): encoding, decoding and a streaming reader that copes with
 * PDUs split or coalesced arbitrarily by TCP.
 */

export const PduType = {
  AssociateRq: 0x01,
  AssociateAc: 0x02,
  AssociateRj: 0x03,
  PDataTf: 0x04,
  ReleaseRq: 0x05,
  ReleaseRp: 0x06,
  Abort: 0x07,
} as const;

const ItemType = {
  ApplicationContext: 0x10,
  PresentationContextRq: 0x20,
  PresentationContextAc: 0x21,
  AbstractSyntax: 0x30,
  TransferSyntax: 0x40,
  UserInformation: 0x50,
  MaxLength: 0x51,
  ImplementationClassUid: 0x52,
  AsyncOperationsWindow: 0x53,
  RoleSelection: 0x54,
  ImplementationVersionName: 0x55,
  SopClassExtendedNegotiation: 0x56,
  SopClassCommonExtendedNegotiation: 0x57,
  UserIdentityRq: 0x58,
  UserIdentityAc: 0x59,
} as const;

/** Presentation context result/reason in A-ASSOCIATE-AC (PS3.8 Table 9-18). */
export const PresentationContextResult = {
  Acceptance: 0,
  UserRejection: 1,
  NoReason: 2,
  AbstractSyntaxNotSupported: 3,
  TransferSyntaxesNotSupported: 4,
} as const;

/** A-ABORT source (PS3.8 Table 9-26). */
export const AbortSource = { ServiceUser: 0, ServiceProvider: 2 } as const;
/** A-ABORT reason when the source is the service provider. */
export const AbortReason = {
  NotSpecified: 0,
  UnrecognizedPdu: 1,
  UnexpectedPdu: 2,
  UnrecognizedPduParameter: 4,
  UnexpectedPduParameter: 5,
  InvalidPduParameterValue: 6,
} as const;

export interface PresentationContextProposal {
  /** Odd integer 1..255. */
  id: number;
  abstractSyntax: string;
  transferSyntaxes: string[];
}

export interface PresentationContextResultItem {
  id: number;
  /** 0 acceptance, 1 user rejection, 2 no reason, 3 abstract syntax not supported, 4 transfer syntaxes not supported */
  result: number;
  transferSyntax: string;
}

/** SCP/SCU Role Selection sub-item (PS3.7 D.3.3.4). */
export interface RoleSelection {
  sopClassUid: string;
  scuRole: boolean;
  scpRole: boolean;
}

export interface ExtendedNegotiation {
  sopClassUid: string;
  info: Buffer;
}

export interface CommonExtendedNegotiation {
  sopClassUid: string;
  serviceClassUid: string;
  relatedGeneralSopClassUids: string[];
}

export interface UserIdentityRq {
  type: number;
  positiveResponseRequested: boolean;
  primaryField: Buffer;
  secondaryField: Buffer;
}

export interface UserInformation {
  /** Maximum length of P-DATA-TF PDUs the sender can receive; 0 = no limit. */
  maxPduLength?: number;
  implementationClassUid?: string;
  implementationVersionName?: string;
  asyncOperations?: { maxInvoked: number; maxPerformed: number };
  roleSelections: RoleSelection[];
  extendedNegotiations: ExtendedNegotiation[];
  commonExtendedNegotiations: CommonExtendedNegotiation[];
  userIdentity?: UserIdentityRq;
  userIdentityResponse?: Buffer;
}

export interface AssociateRqPdu {
  type: typeof PduType.AssociateRq;
  protocolVersion: number;
  calledAeTitle: string;
  callingAeTitle: string;
  applicationContext: string;
  presentationContexts: PresentationContextProposal[];
  userInformation: UserInformation;
}

export interface AssociateAcPdu {
  type: typeof PduType.AssociateAc;
  protocolVersion: number;
  calledAeTitle: string;
  callingAeTitle: string;
  applicationContext: string;
  presentationContexts: PresentationContextResultItem[];
  userInformation: UserInformation;
}

export interface AssociateRjPdu {
  type: typeof PduType.AssociateRj;
  /** 1 rejected-permanent, 2 rejected-transient */
  result: number;
  /** 1 service-user, 2 service-provider (ACSE), 3 service-provider (presentation) */
  source: number;
  reason: number;
}

export interface Pdv {
  contextId: number;
  isCommand: boolean;
  isLast: boolean;
  data: Buffer;
}

export interface PDataTfPdu {
  type: typeof PduType.PDataTf;
  pdvs: Pdv[];
}

export interface ReleaseRqPdu {
  type: typeof PduType.ReleaseRq;
}
export interface ReleaseRpPdu {
  type: typeof PduType.ReleaseRp;
}
export interface AbortPdu {
  type: typeof PduType.Abort;
  source: number;
  reason: number;
}

export type Pdu =
  | AssociateRqPdu
  | AssociateAcPdu
  | AssociateRjPdu
  | PDataTfPdu
  | ReleaseRqPdu
  | ReleaseRpPdu
  | AbortPdu;

export class PduError extends Error {
  constructor(
    message: string,
    /** A-ABORT reason to send for this error. */
    readonly abortReason: number = AbortReason.InvalidPduParameterValue,
  ) {
    super(message);
    this.name = 'PduError';
  }
}

export function emptyUserInformation(): UserInformation {
  return { roleSelections: [], extendedNegotiations: [], commonExtendedNegotiations: [] };
}

// ---------------------------------------------------------------------------------------------
// Encoding
// ---------------------------------------------------------------------------------------------

function header(type: number, length: number): Buffer {
  const b = Buffer.alloc(6);
  b[0] = type;
  b.writeUInt32BE(length, 2);
  return b;
}

function item(type: number, body: Buffer): Buffer {
  if (body.length > 0xffff) throw new PduError(`item 0x${type.toString(16)} too long`);
  const b = Buffer.alloc(4);
  b[0] = type;
  b.writeUInt16BE(body.length, 2);
  return Buffer.concat([b, body]);
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

function ascii(s: string): Buffer {
  return Buffer.from(s, 'latin1');
}

function uidWithLength(uid: string): Buffer {
  const u = ascii(uid);
  return Buffer.concat([u16(u.length), u]);
}

/** AE titles: 1-16 characters of the default repertoire, no backslash or control characters. */
export function validateAeTitle(ae: string): string {
  const t = ae.trim();
  // eslint-disable-next-line no-control-regex
  if (t.length === 0 || t.length > 16 || /[\\\x00-\x1f\x7f-\uffff]/.test(t)) {
    throw new PduError(`invalid AE title "${ae}"`);
  }
  return t;
}

/** 16-byte AE field. Titles are validated where they enter (options); echoed ones are kept as-is. */
function aeField(ae: string): Buffer {
  const field = Buffer.alloc(16, 0x20);
  field.write(ae.trim().slice(0, 16), 0, 'latin1');
  return field;
}

function encodeUserInformation(ui: UserInformation): Buffer {
  const parts: Buffer[] = [];
  if (ui.maxPduLength !== undefined) {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(ui.maxPduLength >>> 0);
    parts.push(item(ItemType.MaxLength, b));
  }
  if (ui.implementationClassUid) parts.push(item(ItemType.ImplementationClassUid, ascii(ui.implementationClassUid)));
  if (ui.asyncOperations) {
    parts.push(
      item(ItemType.AsyncOperationsWindow, Buffer.concat([u16(ui.asyncOperations.maxInvoked), u16(ui.asyncOperations.maxPerformed)])),
    );
  }
  for (const r of ui.roleSelections) {
    parts.push(
      item(ItemType.RoleSelection, Buffer.concat([uidWithLength(r.sopClassUid), Buffer.from([r.scuRole ? 1 : 0, r.scpRole ? 1 : 0])])),
    );
  }
  if (ui.implementationVersionName) parts.push(item(ItemType.ImplementationVersionName, ascii(ui.implementationVersionName)));
  for (const e of ui.extendedNegotiations) {
    parts.push(item(ItemType.SopClassExtendedNegotiation, Buffer.concat([uidWithLength(e.sopClassUid), e.info])));
  }
  for (const c of ui.commonExtendedNegotiations) {
    const related = Buffer.concat(c.relatedGeneralSopClassUids.map(uidWithLength));
    parts.push(
      item(
        ItemType.SopClassCommonExtendedNegotiation,
        Buffer.concat([uidWithLength(c.sopClassUid), uidWithLength(c.serviceClassUid), u16(related.length), related]),
      ),
    );
  }
  if (ui.userIdentity) {
    const u = ui.userIdentity;
    parts.push(
      item(
        ItemType.UserIdentityRq,
        Buffer.concat([
          Buffer.from([u.type, u.positiveResponseRequested ? 1 : 0]),
          u16(u.primaryField.length),
          u.primaryField,
          u16(u.secondaryField.length),
          u.secondaryField,
        ]),
      ),
    );
  }
  if (ui.userIdentityResponse) {
    parts.push(item(ItemType.UserIdentityAc, Buffer.concat([u16(ui.userIdentityResponse.length), ui.userIdentityResponse])));
  }
  return item(ItemType.UserInformation, Buffer.concat(parts));
}

function encodeAssociate(pdu: AssociateRqPdu | AssociateAcPdu): Buffer {
  const fixed = Buffer.alloc(68);
  fixed.writeUInt16BE(pdu.protocolVersion, 0);
  aeField(pdu.calledAeTitle).copy(fixed, 4);
  aeField(pdu.callingAeTitle).copy(fixed, 20);
  const items: Buffer[] = [item(ItemType.ApplicationContext, ascii(pdu.applicationContext))];
  if (pdu.type === PduType.AssociateRq) {
    for (const pc of pdu.presentationContexts) {
      const sub = [item(ItemType.AbstractSyntax, ascii(pc.abstractSyntax)), ...pc.transferSyntaxes.map((ts) => item(ItemType.TransferSyntax, ascii(ts)))];
      items.push(item(ItemType.PresentationContextRq, Buffer.concat([Buffer.from([pc.id, 0, 0, 0]), ...sub])));
    }
  } else {
    for (const pc of pdu.presentationContexts) {
      items.push(
        item(
          ItemType.PresentationContextAc,
          Buffer.concat([Buffer.from([pc.id, 0, pc.result, 0]), item(ItemType.TransferSyntax, ascii(pc.transferSyntax))]),
        ),
      );
    }
  }
  items.push(encodeUserInformation(pdu.userInformation));
  const body = Buffer.concat([fixed, ...items]);
  return Buffer.concat([header(pdu.type, body.length), body]);
}

/** Header of a P-DATA-TF PDU holding one PDV of `dataLength` bytes (PDU header + PDV header). */
export function pDataHeader(contextId: number, isCommand: boolean, isLast: boolean, dataLength: number): Buffer {
  const b = Buffer.alloc(12);
  b[0] = PduType.PDataTf;
  b.writeUInt32BE(dataLength + 6, 2);
  b.writeUInt32BE(dataLength + 2, 6);
  b[10] = contextId;
  b[11] = (isCommand ? 1 : 0) | (isLast ? 2 : 0);
  return b;
}

export function encodePdu(pdu: Pdu): Buffer {
  switch (pdu.type) {
    case PduType.AssociateRq:
    case PduType.AssociateAc:
      return encodeAssociate(pdu);
    case PduType.AssociateRj:
      return Buffer.concat([header(pdu.type, 4), Buffer.from([0, pdu.result, pdu.source, pdu.reason])]);
    case PduType.PDataTf: {
      const parts: Buffer[] = [];
      let length = 0;
      for (const pdv of pdu.pdvs) {
        const h = Buffer.alloc(6);
        h.writeUInt32BE(pdv.data.length + 2, 0);
        h[4] = pdv.contextId;
        h[5] = (pdv.isCommand ? 1 : 0) | (pdv.isLast ? 2 : 0);
        parts.push(h, pdv.data);
        length += 6 + pdv.data.length;
      }
      return Buffer.concat([header(pdu.type, length), ...parts]);
    }
    case PduType.ReleaseRq:
    case PduType.ReleaseRp:
      return Buffer.concat([header(pdu.type, 4), Buffer.alloc(4)]);
    case PduType.Abort:
      return Buffer.concat([header(pdu.type, 4), Buffer.from([0, 0, pdu.source, pdu.reason])]);
  }
}

// ---------------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------------

function readString(b: Buffer, start: number, end: number): string {
  // UIDs in items are not padded, but some implementations add a trailing NUL or space.
  return b.toString('latin1', start, end).replace(/[\0 ]+$/, '');
}

function readAeTitle(b: Buffer, start: number): string {
  return b.toString('latin1', start, start + 16).replace(/\0/g, ' ').trim();
}

interface RawItem {
  type: number;
  body: Buffer;
}

/** Splits a buffer into items with a 1-byte type, 1 reserved byte and a 2-byte length. */
function splitItems(b: Buffer, what: string): RawItem[] {
  const items: RawItem[] = [];
  let off = 0;
  while (off < b.length) {
    if (off + 4 > b.length) throw new PduError(`truncated item in ${what}`);
    const type = b[off];
    const len = b.readUInt16BE(off + 2);
    if (off + 4 + len > b.length) throw new PduError(`item 0x${type.toString(16)} overruns ${what}`);
    items.push({ type, body: b.subarray(off + 4, off + 4 + len) });
    off += 4 + len;
  }
  return items;
}

function readUidWithLength(b: Buffer, off: number, what: string): { uid: string; next: number } {
  if (off + 2 > b.length) throw new PduError(`truncated ${what}`);
  const len = b.readUInt16BE(off);
  if (off + 2 + len > b.length) throw new PduError(`truncated ${what}`);
  return { uid: readString(b, off + 2, off + 2 + len), next: off + 2 + len };
}

function decodeUserInformation(body: Buffer): UserInformation {
  const ui = emptyUserInformation();
  for (const sub of splitItems(body, 'user information')) {
    const b = sub.body;
    switch (sub.type) {
      case ItemType.MaxLength:
        if (b.length !== 4) throw new PduError('invalid maximum length sub-item');
        ui.maxPduLength = b.readUInt32BE(0);
        break;
      case ItemType.ImplementationClassUid:
        ui.implementationClassUid = readString(b, 0, b.length);
        break;
      case ItemType.ImplementationVersionName:
        ui.implementationVersionName = readString(b, 0, b.length);
        break;
      case ItemType.AsyncOperationsWindow:
        if (b.length !== 4) throw new PduError('invalid asynchronous operations window sub-item');
        ui.asyncOperations = { maxInvoked: b.readUInt16BE(0), maxPerformed: b.readUInt16BE(2) };
        break;
      case ItemType.RoleSelection: {
        const { uid, next } = readUidWithLength(b, 0, 'role selection sub-item');
        if (next + 2 > b.length) throw new PduError('truncated role selection sub-item');
        ui.roleSelections.push({ sopClassUid: uid, scuRole: b[next] === 1, scpRole: b[next + 1] === 1 });
        break;
      }
      case ItemType.SopClassExtendedNegotiation: {
        const { uid, next } = readUidWithLength(b, 0, 'extended negotiation sub-item');
        ui.extendedNegotiations.push({ sopClassUid: uid, info: Buffer.from(b.subarray(next)) });
        break;
      }
      case ItemType.SopClassCommonExtendedNegotiation: {
        const sop = readUidWithLength(b, 0, 'common extended negotiation sub-item');
        const svc = readUidWithLength(b, sop.next, 'common extended negotiation sub-item');
        const related: string[] = [];
        if (svc.next + 2 <= b.length) {
          const len = b.readUInt16BE(svc.next);
          let off = svc.next + 2;
          const end = Math.min(b.length, off + len);
          while (off < end) {
            const r = readUidWithLength(b, off, 'related general SOP class');
            related.push(r.uid);
            off = r.next;
          }
        }
        ui.commonExtendedNegotiations.push({ sopClassUid: sop.uid, serviceClassUid: svc.uid, relatedGeneralSopClassUids: related });
        break;
      }
      case ItemType.UserIdentityRq: {
        if (b.length < 4) throw new PduError('truncated user identity sub-item');
        const primaryLength = b.readUInt16BE(2);
        const primaryEnd = 4 + primaryLength;
        if (primaryEnd > b.length) throw new PduError('truncated user identity sub-item');
        let secondary = Buffer.alloc(0);
        if (primaryEnd + 2 <= b.length) {
          const secondaryLength = b.readUInt16BE(primaryEnd);
          secondary = Buffer.from(b.subarray(primaryEnd + 2, Math.min(b.length, primaryEnd + 2 + secondaryLength)));
        }
        ui.userIdentity = {
          type: b[0],
          positiveResponseRequested: b[1] === 1,
          primaryField: Buffer.from(b.subarray(4, primaryEnd)),
          secondaryField: secondary,
        };
        break;
      }
      case ItemType.UserIdentityAc: {
        if (b.length < 2) throw new PduError('truncated user identity response');
        ui.userIdentityResponse = Buffer.from(b.subarray(2, 2 + b.readUInt16BE(0)));
        break;
      }
      default:
        // Unknown sub-items are ignored (PS3.8 9.3.1: "shall be ignored").
        break;
    }
  }
  return ui;
}

function decodeAssociate(type: typeof PduType.AssociateRq | typeof PduType.AssociateAc, body: Buffer): AssociateRqPdu | AssociateAcPdu {
  if (body.length < 68) throw new PduError('truncated A-ASSOCIATE PDU');
  const protocolVersion = body.readUInt16BE(0);
  const calledAeTitle = readAeTitle(body, 4);
  const callingAeTitle = readAeTitle(body, 20);
  let applicationContext = '';
  let userInformation: UserInformation | undefined;
  const proposals: PresentationContextProposal[] = [];
  const results: PresentationContextResultItem[] = [];
  for (const it of splitItems(body.subarray(68), 'A-ASSOCIATE PDU')) {
    switch (it.type) {
      case ItemType.ApplicationContext:
        applicationContext = readString(it.body, 0, it.body.length);
        break;
      case ItemType.PresentationContextRq: {
        if (type !== PduType.AssociateRq) throw new PduError('RQ presentation context in A-ASSOCIATE-AC', AbortReason.UnexpectedPduParameter);
        if (it.body.length < 4) throw new PduError('truncated presentation context item');
        let abstractSyntax = '';
        const transferSyntaxes: string[] = [];
        for (const sub of splitItems(it.body.subarray(4), 'presentation context')) {
          if (sub.type === ItemType.AbstractSyntax) abstractSyntax = readString(sub.body, 0, sub.body.length);
          else if (sub.type === ItemType.TransferSyntax) transferSyntaxes.push(readString(sub.body, 0, sub.body.length));
        }
        proposals.push({ id: it.body[0], abstractSyntax, transferSyntaxes });
        break;
      }
      case ItemType.PresentationContextAc: {
        if (type !== PduType.AssociateAc) throw new PduError('AC presentation context in A-ASSOCIATE-RQ', AbortReason.UnexpectedPduParameter);
        if (it.body.length < 4) throw new PduError('truncated presentation context item');
        let transferSyntax = '';
        for (const sub of splitItems(it.body.subarray(4), 'presentation context')) {
          if (sub.type === ItemType.TransferSyntax) transferSyntax = readString(sub.body, 0, sub.body.length);
        }
        results.push({ id: it.body[0], result: it.body[2], transferSyntax });
        break;
      }
      case ItemType.UserInformation:
        userInformation = decodeUserInformation(it.body);
        break;
      default:
        // Items of unrecognized types are ignored (forward compatibility).
        break;
    }
  }
  const common = {
    protocolVersion,
    calledAeTitle,
    callingAeTitle,
    applicationContext,
    userInformation: userInformation ?? emptyUserInformation(),
  };
  return type === PduType.AssociateRq
    ? { type, ...common, presentationContexts: proposals }
    : { type, ...common, presentationContexts: results };
}

function decodePData(body: Buffer): PDataTfPdu {
  const pdvs: Pdv[] = [];
  let off = 0;
  while (off < body.length) {
    if (off + 6 > body.length) throw new PduError('truncated PDV item');
    const len = body.readUInt32BE(off);
    if (len < 2 || off + 4 + len > body.length) throw new PduError('PDV item length out of range');
    const control = body[off + 5];
    pdvs.push({
      contextId: body[off + 4],
      isCommand: (control & 1) !== 0,
      isLast: (control & 2) !== 0,
      data: body.subarray(off + 6, off + 4 + len),
    });
    off += 4 + len;
  }
  if (pdvs.length === 0) throw new PduError('P-DATA-TF PDU without PDV items');
  return { type: PduType.PDataTf, pdvs };
}

/** Decodes one complete PDU (header included). */
export function decodePdu(pdu: Buffer): Pdu {
  if (pdu.length < 6) throw new PduError('truncated PDU header');
  const type = pdu[0];
  const length = pdu.readUInt32BE(2);
  if (pdu.length !== 6 + length) throw new PduError('PDU length mismatch');
  const body = pdu.subarray(6);
  switch (type) {
    case PduType.AssociateRq:
    case PduType.AssociateAc:
      return decodeAssociate(type, body);
    case PduType.AssociateRj:
      if (body.length < 4) throw new PduError('truncated A-ASSOCIATE-RJ PDU');
      return { type, result: body[1], source: body[2], reason: body[3] };
    case PduType.PDataTf:
      return decodePData(body);
    case PduType.ReleaseRq:
    case PduType.ReleaseRp:
      return { type };
    case PduType.Abort:
      if (body.length < 4) throw new PduError('truncated A-ABORT PDU');
      return { type, source: body[2], reason: body[3] };
    default:
      throw new PduError(`unrecognized PDU type 0x${type.toString(16)}`, AbortReason.UnrecognizedPdu);
  }
}

/** Upper bound for the A-ASSOCIATE PDUs (generous: user identity items may carry tokens). */
const MAX_ASSOCIATE_PDU_LENGTH = 1024 * 1024;

/**
 * Streaming PDU reader: feed socket chunks with `push`, pull complete PDUs with `next`.
 * Throws PduError for an unknown PDU type or a length beyond the configured bounds, before the
 * body is buffered.
 */
export class PduReader {
  private chunks: Buffer[] = [];
  private length = 0;

  /** @param maxPDataLength largest P-DATA-TF PDU body accepted (our announced maximum plus slack) */
  constructor(private readonly maxPDataLength: number) {}

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  get bufferedBytes(): number {
    return this.length;
  }

  next(): Pdu | null {
    if (this.length < 6) return null;
    const head = this.peek(6);
    const type = head[0];
    const length = head.readUInt32BE(2);
    let limit: number;
    switch (type) {
      case PduType.PDataTf:
        limit = this.maxPDataLength;
        break;
      case PduType.AssociateRq:
      case PduType.AssociateAc:
        limit = MAX_ASSOCIATE_PDU_LENGTH;
        break;
      case PduType.AssociateRj:
      case PduType.ReleaseRq:
      case PduType.ReleaseRp:
      case PduType.Abort:
        limit = 64;
        break;
      default:
        throw new PduError(`unrecognized PDU type 0x${type.toString(16)}`, AbortReason.UnrecognizedPdu);
    }
    if (length > limit) throw new PduError(`PDU type 0x${type.toString(16)} length ${length} exceeds limit ${limit}`);
    if (this.length < 6 + length) return null;
    return decodePdu(this.take(6 + length));
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length >= n) return this.chunks[0].subarray(0, n);
    return Buffer.concat(this.chunks, Math.min(this.length, Math.max(n, 0))).subarray(0, n);
  }

  private take(n: number): Buffer {
    const first = this.chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let copied = 0;
      while (copied < n) {
        const c = this.chunks[0];
        const want = n - copied;
        if (c.length <= want) {
          c.copy(out, copied);
          copied += c.length;
          this.chunks.shift();
        } else {
          c.copy(out, copied, 0, want);
          this.chunks[0] = c.subarray(want);
          copied += want;
        }
      }
    }
    this.length -= n;
    return out;
  }
}
