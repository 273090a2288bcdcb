export * from './bootstrap.js';
export * from './runtime.js';
export * from './app.module.js';
export * from './storage.module.js';
export * from './health.controller.js';
export * from './dimse-listener.service.js';
