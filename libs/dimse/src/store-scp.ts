/**
 * Performing an incoming C-STORE (on the server, and on the client during C-GET): hand the
 * streamed data set to the handler, answer with the status it resolves to.
 */
import type { Association, IncomingDataset, NegotiatedContext } from './association.js';
import { type Command, CommandField } from './command.js';
import type { AssociationInfo, DimseStatus, StoreRequest } from './contract.js';
import { DimseStatusCode } from './contract.js';
import { type DimseLogger, errorMessage, errorStack } from './logger.js';
import { normalizeStatus, statusCategory, statusFromError } from './status.js';

export type StoreHandler = (req: StoreRequest, dataset: IncomingDataset) => Promise<DimseStatus>;

export async function performStore(args: {
  association: Association;
  info: AssociationInfo;
  context: NegotiatedContext;
  command: Command;
  dataset: IncomingDataset;
  handler: StoreHandler | undefined;
  log: DimseLogger;
}): Promise<void> {
  const { association, context, command, dataset, log } = args;
  const sopClassUid = command.affectedSopClassUid ?? '';
  const sopInstanceUid = command.affectedSopInstanceUid ?? '';
  let status: DimseStatus;
  if (!args.handler) {
    status = { status: DimseStatusCode.SopClassNotSupported, errorComment: 'C-STORE not supported' };
  } else if (!sopInstanceUid) {
    status = { status: DimseStatusCode.CannotUnderstand, errorComment: 'missing Affected SOP Instance UID' };
  } else if (sopClassUid !== context.abstractSyntax) {
    status = {
      status: DimseStatusCode.SopClassNotSupported,
      errorComment: 'SOP Class differs from the presentation context',
    };
  } else {
    const req: StoreRequest = {
      association: args.info,
      messageId: command.messageId ?? 0,
      affectedSopClassUid: sopClassUid,
      affectedSopInstanceUid: sopInstanceUid,
      transferSyntaxUid: context.transferSyntax,
      priority: command.priority ?? 0,
      ...(command.moveOriginatorAeTitle !== undefined ? { moveOriginatorAeTitle: command.moveOriginatorAeTitle } : {}),
      ...(command.moveOriginatorMessageId !== undefined ? { moveOriginatorMessageId: command.moveOriginatorMessageId } : {}),
    };
    try {
      status = normalizeStatus(await args.handler(req, dataset), DimseStatusCode.CannotUnderstand);
      const category = statusCategory(status.status);
      if ((category === 'success' || category === 'warning') && !dataset.readableEnded) {
        // Safety net: never confirm an object whose bytes were not all consumed.
        log.error(`[${association.id}] C-STORE handler for ${sopInstanceUid} returned success without consuming the data set`);
        status = { status: DimseStatusCode.OutOfResources, errorComment: 'data set not fully consumed' };
      }
    } catch (e) {
      if (dataset.destroyed && !dataset.isComplete && association.state === 'closed') {
        // The association went away mid-data set: nobody to answer.
        log.debug?.(`[${association.id}] C-STORE ${sopInstanceUid} interrupted: ${errorMessage(e)}`);
        return;
      }
      status = statusFromError(e, DimseStatusCode.OutOfResources, DimseStatusCode.CannotUnderstand);
      log.error(`[${association.id}] C-STORE handler failed for ${sopInstanceUid}: ${errorMessage(e)}`, errorStack(e));
    }
  }
  // Drop whatever the handler did not read, and answer only after the whole data set arrived.
  if (!dataset.readableEnded && !dataset.destroyed) dataset.destroy();
  try {
    await dataset.received;
  } catch {
    return; // association ended: no response possible
  }
  await association.send(context, {
    commandField: CommandField.C_STORE_RSP,
    hasDataset: false,
    messageIdBeingRespondedTo: command.messageId ?? 0,
    affectedSopClassUid: sopClassUid,
    affectedSopInstanceUid: sopInstanceUid,
    status: status.status,
    ...(status.errorComment ? { errorComment: status.errorComment } : {}),
  });
}
