export * from './contract.js';
export * from './uids.js';
export * from './pdu.js';
export * from './command.js';
export * from './dataset.js';
export * from './charset.js';
export * from './part10.js';
export * from './logger.js';
export * from './status.js';
export {
  Association,
  AssociationAbortedError,
  AssociationRejectedError,
  DatasetSourceError,
  IncomingDataset,
  ResponseStream,
  type AssociationHooks,
  type AssociationOptions,
  type AssociationState,
  type DimseResponse,
  type NegotiatedContext,
} from './association.js';
export { DimseServer, DEFAULT_MAX_PDU_LENGTH, type DimseServerOptions } from './server.js';
export {
  DimseClient,
  storageContexts,
  type DimseClientOptions,
  type ProposedContext,
  type QueryOptions,
  type RetrieveOptions,
  type RetrieveProgress,
  type RetrieveResult,
  type StoreOptions,
} from './client.js';
export type { StoreHandler } from './store-scp.js';
