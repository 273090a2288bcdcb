import 'reflect-metadata';
import { ConfigError, loadConfig, ROLES, type Role } from '#vna/config';
import { Logger, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { VnaAppModule } from './app.module.js';
import { prepareRuntime } from './runtime.js';

const LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

/**
 * Start an archive process. `roles` fixes the roles of a single-role app; the all-in-one app
 * passes none and runs what VNA_ROLES says (all by default).
 */
export async function bootstrap(roles?: Role[]): Promise<NestExpressApplication> {
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

  const runtime = await prepareRuntime(config);
  const app = await NestFactory.create<NestExpressApplication>(VnaAppModule.forRoot(config, runtime), {
    logger: LEVELS.slice(0, LEVELS.indexOf(config.logLevel as LogLevel) + 1),
    bodyParser: false,
  });
  app.enableShutdownHooks();
  app.set('trust proxy', false);
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
