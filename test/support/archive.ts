/**
 * End-to-end harness: runs the real archive (the built all-in-one app) as a child process against
 * real PostgreSQL and Redis, on free ports, and offers helpers to drive it with dcmtk tools.
 */
import { xxh64 as xxh64Native } from '@node-rs/xxhash';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

export const ROOT = path.resolve(import.meta.dirname, '../..');
const ADMIN_PG = process.env.VNA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const REDIS = process.env.VNA_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

export interface ArchiveOptions {
  env?: Record<string, string>;
  /** Which app to run: the all-in-one `vna` (default) or a single-role app. */
  app?: 'vna' | 'ingest' | 'indexer' | 'retrieval' | 'tiering';
  /** Reuse the database and data directory of an earlier archive (restart scenarios). */
  reuse?: Archive;
}

/** VNA_TIERS for the e2e tests: a JSON array of tier objects (see libs/config/src/tiers.ts). */
export function tiersEnv(tiers: Array<Record<string, unknown>>): Record<string, string> {
  return { VNA_TIERS: JSON.stringify(tiers) };
}

export class Archive {
  child?: ChildProcess;
  http = '';
  dicomPort = 0;
  readonly aeTitle = 'VNA';
  logFile = '';
  db!: pg.Client;
  dbUrl = '';
  redisUrl = '';
  dataDir = '';
  env: Record<string, string> = {};
  app = 'vna';

  static async start(options: ArchiveOptions = {}): Promise<Archive> {
    const a = new Archive();
    if (options.reuse) {
      Object.assign(a, { dbUrl: options.reuse.dbUrl, redisUrl: options.reuse.redisUrl, dataDir: options.reuse.dataDir });
    } else {
      const dbName = `vna_e2e_${randomBytes(4).toString('hex')}`;
      const admin = new pg.Client({ connectionString: ADMIN_PG });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${dbName}`);
      await admin.end();
      const u = new URL(ADMIN_PG);
      u.pathname = `/${dbName}`;
      a.dbUrl = u.toString();
      // A Redis database of its own, emptied first, so queues never mix between runs.
      const redisDb = 1 + Math.floor(Math.random() * 15);
      a.redisUrl = `${REDIS.replace(/\/\d*$/, '')}/${redisDb}`;
      await run('redis-cli', ['-u', a.redisUrl, 'FLUSHDB']);
      a.dataDir = mkdtempSync(path.join(tmpdir(), 'vna-e2e-'));
    }
    a.env = { ...(options.env ?? {}) };
    a.app = options.app ?? 'vna';
    await a.launch();
    a.db = new pg.Client({ connectionString: a.dbUrl });
    await a.db.connect();
    return a;
  }

  private async launch() {
    const httpPort = await freePort();
    this.dicomPort = await freePort();
    this.http = `http://127.0.0.1:${httpPort}`;
    this.logFile = path.join(this.dataDir, `archive-${Date.now()}.log`);
    const log = createWriteStream(this.logFile);
    this.child = spawn(process.execPath, [path.join(ROOT, `dist/apps/${this.app}/src/main.js`)], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        DATABASE_URL: this.dbUrl,
        REDIS_URL: this.redisUrl,
        VNA_DATA_DIR: this.dataDir,
        VNA_HTTP_PORT: String(httpPort),
        VNA_HTTP_HOST: '127.0.0.1',
        VNA_DIMSE_PORT: String(this.dicomPort),
        VNA_AE_TITLE: this.aeTitle,
        VNA_RECONCILE_INTERVAL_S: '2',
        ...this.env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.pipe(log);
    this.child.stderr!.pipe(log);
    const exited = new Promise<never>((_, reject) =>
      this.child!.once('exit', (code) => reject(new Error(`archive exited with ${code}:\n${this.logTail()}`))),
    );
    const ready = (async () => {
      for (let i = 0; i < 600; i++) {
        try {
          const r = await fetch(`${this.http}/api/health`);
          if (r.status === 200) return;
        } catch {
          // not listening yet
        }
        await sleep(100);
      }
      throw new Error(`archive not ready after 60 s:\n${this.logTail()}`);
    })();
    await Promise.race([ready, exited]);
  }

  logTail(lines = 40): string {
    try {
      return readFileSync(this.logFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }

  get alive(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** kill -9: no shutdown hooks, no flushing. */
  async kill9() {
    if (!this.alive) return;
    const gone = new Promise((r) => this.child!.once('exit', r));
    this.child!.kill('SIGKILL');
    await gone;
  }

  async stop() {
    await this.db?.end().catch(() => undefined);
    if (!this.alive) return;
    const gone = new Promise((r) => this.child!.once('exit', r));
    this.child!.kill('SIGTERM');
    await Promise.race([gone, sleep(15_000).then(() => this.child!.kill('SIGKILL'))]);
  }

  /** Wait until every received instance is indexed and `expected` instances exist. */
  async waitIndexed(expected: number, timeoutMs = 120_000) {
    const t0 = Date.now();
    let last = '';
    while (Date.now() - t0 < timeoutMs) {
      const r = await this.db.query(`SELECT status, count(*)::int AS n FROM instance GROUP BY status`);
      const by = Object.fromEntries(r.rows.map((x: { status: string; n: number }) => [x.status, x.n]));
      last = JSON.stringify(by);
      if ((by.RECEIVED ?? 0) === 0 && (by.INDEXED ?? 0) === expected) return;
      await sleep(100);
    }
    throw new Error(`not indexed in time: ${last}, expected ${expected} INDEXED`);
  }

  dcmArgs(callingAe = 'TESTSCU'): string[] {
    return ['-aet', callingAe, '-aec', this.aeTitle, '127.0.0.1', String(this.dicomPort)];
  }
}

export function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command (dcmtk tools etc.) with TCP_NODELAY=1; never throws on a non-zero exit. */
export function run(cmd: string, args: string[], options: { env?: Record<string, string>; input?: Buffer } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, TCP_NODELAY: '1', ...options.env } });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
    if (options.input) child.stdin.end(options.input);
    else child.stdin.end();
  });
}

export const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
/** XXH64 (seed 0) in 16 hex digits: the check value the archive records beside the SHA-256. */
export const xxh64 = (b: Buffer) => xxh64Native(b).toString(16).padStart(16, '0');

/** The data set bytes of a Part 10 file (after preamble, DICM and the group 0002 meta). */
export function datasetBytes(file: Buffer): Buffer {
  if (file.toString('latin1', 128, 132) !== 'DICM') return file;
  let off = 132;
  while (off + 8 <= file.length && file.readUInt16LE(off) === 0x0002) {
    const vr = file.toString('latin1', off + 4, off + 6);
    if (['OB', 'OW', 'OF', 'SQ', 'UT', 'UN'].includes(vr)) off += 12 + file.readUInt32LE(off + 8);
    else off += 8 + file.readUInt16LE(off + 6);
  }
  return file.subarray(off);
}

export interface GeneratedFile {
  path: string;
  sopInstanceUid: string;
}

export interface StudySpec {
  patientId: string;
  patientName: string;
  issuer?: string;
  birthDate?: string;
  sex?: string;
  studyUid: string;
  studyDate: string;
  studyTime?: string;
  accession?: string;
  description?: string;
  referrer?: string;
  series: Array<{ seriesUid: string; modality: string; number?: number; instances: number; rows?: number; cols?: number; frames?: number; sopUids?: string[]; headerPad?: number; description?: string; bodyPart?: string; institution?: string }>;
}

/** Generate DICOM files with pydicom (test/support/gen-studies.py). */
export async function generateStudies(dir: string, spec: StudySpec[]): Promise<GeneratedFile[]> {
  const r = await run('/usr/bin/python3', [path.join(ROOT, 'test/support/gen-studies.py'), dir, JSON.stringify(spec)]);
  if (r.code !== 0) throw new Error(`gen-studies failed: ${r.stderr}`);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => {
    const [p, uid] = l.split('\t');
    return { path: p!, sopInstanceUid: uid! };
  });
}

export function uid(): string {
  // 2.25 + a 128-bit random integer: a valid, unique UID.
  return `2.25.${BigInt(`0x${randomBytes(16).toString('hex')}`).toString()}`;
}

/** Count C-STORE successes / failures in `storescu -v` output. */
export function storeResponses(out: string): { ok: number; failed: number; statuses: string[] } {
  const lines = out.split('\n').filter((l) => l.includes('Received Store Response'));
  return {
    ok: lines.filter((l) => l.includes('(Success)')).length,
    failed: lines.filter((l) => !l.includes('(Success)')).length,
    statuses: lines,
  };
}

/** Build a multipart/related STOW-RS body from parts. */
export function multipart(parts: Array<{ type: string; body: Buffer }>): { body: Buffer; contentType: string } {
  const boundary = `vna-${randomBytes(8).toString('hex')}`;
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: ${p.type}\r\n\r\n`), p.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

/** pydicom's own test files (Debian python3-pydicom): many vendors' quirks and transfer syntaxes. */
export const PYDICOM_TEST_FILES = '/usr/lib/python3/dist-packages/pydicom/data/test_files';

/** A value of the file meta group (0002,element) of a Part 10 file, or null. */
export function metaValue(file: Buffer, element: number): string | null {
  if (file.toString('latin1', 128, 132) !== 'DICM') return null;
  let off = 132;
  while (off + 8 <= file.length && file.readUInt16LE(off) === 0x0002) {
    const el = file.readUInt16LE(off + 2);
    const vr = file.toString('latin1', off + 4, off + 6);
    const long = ['OB', 'OW', 'OF', 'SQ', 'UT', 'UN'].includes(vr);
    const len = long ? file.readUInt32LE(off + 8) : file.readUInt16LE(off + 6);
    const start = off + (long ? 12 : 8);
    if (el === element) return file.toString('latin1', start, start + len).replace(/[\0 ]+$/, '');
    off = start + len;
  }
  return null;
}

/** storescu's option proposing each transfer syntax (it proposes one compressed syntax per run). */
const STORESCU_FLAG: Record<string, string> = {
  '1.2.840.10008.1.2': '-xi', '1.2.840.10008.1.2.1': '-xe', '1.2.840.10008.1.2.2': '-xb', '1.2.840.10008.1.2.1.99': '-xd',
  '1.2.840.10008.1.2.4.50': '-xy', '1.2.840.10008.1.2.4.51': '-xx', '1.2.840.10008.1.2.4.57': '-xs',
  '1.2.840.10008.1.2.4.70': '-xs', '1.2.840.10008.1.2.4.80': '-xt', '1.2.840.10008.1.2.4.81': '-xu',
  '1.2.840.10008.1.2.4.90': '-xv', '1.2.840.10008.1.2.4.91': '-xw', '1.2.840.10008.1.2.5': '-xr',
};

/** The pydicom test files grouped by the storescu option that sends each in its own syntax. */
export function pydicomFilesByStorescuFlag(): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const f of readdirSync(PYDICOM_TEST_FILES).filter((n) => n.endsWith('.dcm'))) {
    const file = path.join(PYDICOM_TEST_FILES, f);
    const ts = metaValue(readFileSync(file), 0x0010);
    const flag = (ts && STORESCU_FLAG[ts]) ?? '-xe';
    groups.set(flag, [...(groups.get(flag) ?? []), file]);
  }
  return groups;
}

/** Study Instance UID of a file made by generateStudies (<dir>/<study>/<series>/<n>.dcm). */
export function generatedStudyUid(file: string): string {
  return path.basename(path.dirname(path.dirname(file)));
}
