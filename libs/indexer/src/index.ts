export * from './indexer.service.js';
export * from './index.processor.js';
export * from './reconciler.service.js';
export * from './indexer.module.js';
