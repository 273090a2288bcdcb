export * from './dictionary.js';
export * from './query.service.js';
export * from './query.module.js';
