/**
 * Status helpers (PS3.7 Annex C).
 */
import { DimseError, type DimseStatus } from './contract.js';
import { truncateComment } from './command.js';
import { errorMessage } from './logger.js';

export type StatusCategory = 'success' | 'warning' | 'failure' | 'cancel' | 'pending';

export function statusCategory(status: number): StatusCategory {
  if (status === 0x0000) return 'success';
  if (status === 0xff00 || status === 0xff01) return 'pending';
  if (status === 0xfe00) return 'cancel';
  if (status === 0x0001 || status === 0x0107 || status === 0x0116 || (status & 0xf000) === 0xb000) return 'warning';
  return 'failure';
}

/** Errors of the storage/OS layer that mean "try again later" rather than "bad data". */
const RESOURCE_ERROR_CODES = new Set([
  'ENOSPC',
  'EDQUOT',
  'EMFILE',
  'ENFILE',
  'ENOMEM',
  'EIO',
  'EAGAIN',
  'EBUSY',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
]);

/**
 * Maps an exception thrown by a handler to a DIMSE status: DimseError keeps its status; resource
 * errors (disk full, storage unreachable) become `resourceStatus`; anything else `otherStatus`.
 */
export function statusFromError(e: unknown, resourceStatus: number, otherStatus: number): DimseStatus {
  if (e instanceof DimseError) return { status: e.status, errorComment: truncateComment(e.message) };
  const code = (e as { code?: unknown } | null)?.code;
  const status = typeof code === 'string' && RESOURCE_ERROR_CODES.has(code) ? resourceStatus : otherStatus;
  return { status, errorComment: truncateComment(errorMessage(e) || 'internal error') };
}

/** Validates what a handler resolved to. */
export function normalizeStatus(s: unknown, fallback: number): DimseStatus {
  if (s && typeof s === 'object' && typeof (s as DimseStatus).status === 'number') {
    const st = s as DimseStatus;
    const status = st.status & 0xffff;
    return st.errorComment !== undefined ? { status, errorComment: truncateComment(String(st.errorComment)) } : { status };
  }
  return { status: fallback, errorComment: 'handler returned no status' };
}

