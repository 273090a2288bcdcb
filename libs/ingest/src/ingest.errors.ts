/** Why an object was refused. The DIMSE and STOW edges map these to their status codes. */
export enum IngestErrorCode {
  /** Not a DICOM object at all, or its header cannot be parsed. */
  CannotUnderstand = 'CANNOT_UNDERSTAND',
  /** A required attribute is missing or invalid (SOP Instance UID, Study/Series UID...). */
  MissingAttribute = 'MISSING_ATTRIBUTE',
  /** The data set disagrees with the command or request (SOP UIDs, study in the URL). */
  DataSetMismatch = 'DATA_SET_MISMATCH',
  /** The data set ends before its last element does. */
  Truncated = 'TRUNCATED',
  /** The SOP Instance UID is already stored under another study. */
  StudyConflict = 'STUDY_CONFLICT',
  /** Storage or database could not make the object durable. */
  OutOfResources = 'OUT_OF_RESOURCES',
  /** The sender aborted or the stream broke mid-object. */
  Aborted = 'ABORTED',
}

export class IngestError extends Error {
  /** The object's UIDs when they could be read (for STOW FailedSOPSequence). */
  sopClassUid?: string;
  sopInstanceUid?: string;

  constructor(
    readonly code: IngestErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'IngestError';
  }
}
