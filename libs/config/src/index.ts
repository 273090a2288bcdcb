export * from './config.js';
export * from './tiers.js';
