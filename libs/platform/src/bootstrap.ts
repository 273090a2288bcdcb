import 'reflect-metadata';
import { catalogDataSourceOptions } from '#vna/catalog';
import { adminTokenGuard, dicomwebTokenGuard } from '#vna/admin';
import { ConfigError, loadConfig, ROLES, type Role, type VnaConfig } from '#vna/config';
import { Logger, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { VnaAppModule } from './app.module.js';
import cluster from 'node:cluster';
import { DataSource } from 'typeorm';
import { prepareRuntime } from './runtime.js';

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/**
 * Start an archive process. `roles` fixes the roles of a single-role app; the all-in-one app
 * passes none and runs what VNA_ROLES says (all by default).
 */
export async function bootstrap(roles?: Role[]): Promise<NestExpressApplication | undefined> {
  const logger = new Logger('Bootstrap');
  let config;
  try {
    config = loadConfig();
  } catch (e) {
    if (e instanceof ConfigError) {
      // A startup error says what to fix.
      console.error(e.message);
      process.exit(78);
    }
    throw e;
  }
  if (roles) config.roles = new Set(roles.filter((r) => ROLES.includes(r)));
  if (config.workers > 1 && cluster.isPrimary) {
    await supervise(config);
    return undefined;
  }
  // A worker whose supervisor is gone (even killed with -9) must not hold the ports.
  if (cluster.isWorker) process.on('disconnect', () => process.exit(1));

  const runtime = await prepareRuntime(config);
  const app = await NestFactory.create<NestExpressApplication>(VnaAppModule.forRoot(config, runtime), {
    logger: LEVELS.slice(0, LEVELS.indexOf(config.logLevel as LogLevel) + 1),
    bodyParser: false,
  });
  app.enableShutdownHooks();
  app.set('trust proxy', false);
  if (config.adminToken) app.use('/api', adminTokenGuard(config.adminToken));
  else logger.warn(`VNA_ADMIN_TOKEN is not set: the admin API (/api) is open to anyone who reaches ${config.httpHost}:${config.httpPort}`);
  if (config.dicomwebToken) {
    const guard = dicomwebTokenGuard(config.dicomwebToken);
    app.use('/dicom-web', guard);
    app.use('/wado', guard);
  } else logger.warn(`VNA_DICOMWEB_TOKEN is not set: DICOMweb (/dicom-web, /wado) is open to anyone who reaches ${config.httpHost}:${config.httpPort}`);
  await app.listen(config.httpPort, config.httpHost);
  logger.log(`roles ${[...config.roles].join(', ')}; HTTP on ${config.httpHost}:${config.httpPort} (DICOMweb /dicom-web, admin /api)`);

  const shutdown = async () => {
    await app.close();
    await runtime.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
  return app;
}

/**
 * VNA_WORKERS > 1: this process prepares the shared services (embedded PostgreSQL/Redis when
 * configured so, and the migrations, once), then runs that many workers. Node's cluster shares
 * the DICOM and HTTP listening sockets between them; a worker that dies is replaced.
 */
async function supervise(config: VnaConfig): Promise<void> {
  const logger = new Logger('Supervisor');
  const runtime = await prepareRuntime(config);
  const migrations = new DataSource(catalogDataSourceOptions(runtime.databaseUrl));
  await migrations.initialize(); // runs pending migrations, once, before any worker starts
  await migrations.destroy();

  const env = { DATABASE_URL: runtime.databaseUrl, REDIS_URL: runtime.redisUrl };
  let stopping = false;
  const fork = () => cluster.fork(env);
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    logger.error(`worker ${worker.process.pid} exited (${signal ?? code}); starting a new one`);
    setTimeout(fork, 1000);
  });
  for (let i = 0; i < config.workers; i++) fork();
  logger.log(`${config.workers} workers sharing DICOM port ${config.dimsePort} and HTTP port ${config.httpPort}`);

  const shutdown = async () => {
    stopping = true;
    const workers = Object.values(cluster.workers ?? {});
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (!w || w.isDead()) return resolve();
            w.once('exit', () => resolve());
            w.process.kill('SIGTERM');
          }),
      ),
    );
    await runtime.stop();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown());
  process.once('SIGINT', () => void shutdown());
}
