export * from './admin.module.js';
export * from './ae-registry.service.js';
export * from './ae.dto.js';
export * from './validators.js';
export * from './json-body.middleware.js';
export * from './domain-error.filter.js';
export * from './admin-auth.js';
