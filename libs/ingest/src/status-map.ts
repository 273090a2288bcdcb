import { IngestErrorCode } from './ingest.errors.js';

/**
 * The one place ingest errors become DICOM status codes: C-STORE response statuses (PS3.4 B.2.3)
 * and STOW-RS FailureReason values (PS3.18 Table 10.5.3-2) share this table.
 */
export function failureReasonFor(code: IngestErrorCode): number {
  switch (code) {
    case IngestErrorCode.OutOfResources:
      return 0xa700; // Refused: Out of Resources
    case IngestErrorCode.DataSetMismatch:
    case IngestErrorCode.MissingAttribute:
      return 0xa900; // Error: Data Set does not match SOP Class
    case IngestErrorCode.StudyConflict:
      return 0xa900; // Error: the data set conflicts with what is stored (same UID, other study)
    case IngestErrorCode.CannotUnderstand:
    case IngestErrorCode.Truncated:
      return 0xc000; // Error: Cannot understand
    case IngestErrorCode.Aborted:
      return 0x0110; // Processing failure
  }
}
