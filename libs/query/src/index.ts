export * from './dictionary.js';
export * from './query.service.js';
export * from './cfind.handler.js';
export * from './qido.controller.js';
export * from './query.module.js';
