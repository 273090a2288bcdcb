export * from './entities/index.js';
export * from './instance.repository.js';
export * from './index.repository.js';
export * from './query.repository.js';
export * from './query-model.js';
export * from './catalog.module.js';
export * from './data-source.js';
export * from './location.repository.js';
