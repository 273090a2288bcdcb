export * from './object-reader.service.js';
export * from './access-tracker.service.js';
export * from './retrieval.module.js';
