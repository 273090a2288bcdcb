export * from './move.repository.js';
export * from './study-move.service.js';
export * from './tiering.errors.js';
export * from './tiering.service.js';
export * from './tiering.module.js';
export * from './locations-view.js';
