export * from './names.js';
export * from './job-queue.service.js';
export * from './jobs.module.js';
export * from './periodic-task.js';
