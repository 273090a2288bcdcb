import { DimseError, DimseStatusCode } from '#vna/dimse';
import { RetrieveError, RetrieveErrorCode } from './dimse-retrieve.service.js';

/** Domain errors of C-MOVE/C-GET → DIMSE statuses (the only place they are mapped). */
export function toDimseError(e: unknown): unknown {
  if (!(e instanceof RetrieveError)) return e;
  const comment = e.message.slice(0, 64);
  switch (e.code) {
    case RetrieveErrorCode.InvalidIdentifier:
      return new DimseError(DimseStatusCode.DataSetDoesNotMatchSopClass, comment);
    case RetrieveErrorCode.NoMatch:
      // 0xC000 family (unable to process): the request named UIDs the archive does not hold.
      return new DimseError(DimseStatusCode.CannotUnderstand, comment);
    case RetrieveErrorCode.UnknownDestination:
      return new DimseError(DimseStatusCode.MoveDestinationUnknown, comment);
    default: {
      const never: never = e.code;
      return new Error(`unmapped retrieve error ${String(never)}`);
    }
  }
}
