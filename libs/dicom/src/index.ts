export * from './tags.js';
export * from './header.js';
export * from './attributes.js';
export * from './structure-check.js';
