export * from './ingest.errors.js';
export * from './ingest.service.js';
export * from './cstore.handler.js';
export * from './stow.controller.js';
export * from './status-map.js';
export * from './stow-limits.js';
export * from './tokens.js';
export * from './ingest.module.js';
