/**
 * Test support: dcmtk tools as independent peers, fixtures, temp dirs, free ports.
 * Used only by the *.spec.ts files of this library.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePart10Header } from '../part10.js';

/** Environment of every dcmtk tool we spawn: Debian's dcmtk leaves Nagle on otherwise. */
export const DCMTK_ENV = { ...process.env, TCP_NODELAY: '1' };

export const PYDICOM_TEST_FILES = '/usr/lib/python3/dist-packages/pydicom/data/test_files';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function run(command: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: DCMTK_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs and fails with the tool's output when the exit code is not 0. */
export async function runOk(command: string, args: string[], options: { cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  const r = await run(command, args, options);
  if (r.code !== 0) throw new Error(`${command} ${args.join(' ')} exited with ${r.code}\n${r.stdout}\n${r.stderr}`);
  return r;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function waitForPort(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port });
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} not listening`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A long-running dcmtk process (storescp); `stop()` kills it. */
export interface Daemon {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export async function startDaemon(command: string, args: string[], port: number, cwd?: string): Promise<Daemon> {
  const child = spawn(command, args, { cwd, env: DCMTK_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  await waitForPort(port);
  return {
    child,
    output: () => out,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

export async function tempDir(prefix = 'dimse-test-'): Promise<{ path: string; remove(): Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The data set part of a Part 10 file (what goes on the wire). */
export async function datasetOfFile(path: string): Promise<{ transferSyntaxUid: string; sopInstanceUid: string; sopClassUid: string; dataset: Buffer }> {
  const file = await readFile(path);
  const info = parsePart10Header(file, true)!;
  return { ...info, dataset: file.subarray(info.headerLength) };
}

/** storescu option that proposes exactly the file's transfer syntax first. */
export function storescuProposalOption(ts: string): string {
  switch (ts) {
    case '1.2.840.10008.1.2':
      return '-xi';
    case '1.2.840.10008.1.2.2':
      return '-xb';
    case '1.2.840.10008.1.2.1.99':
      return '-xd';
    case '1.2.840.10008.1.2.4.50':
      return '-xy';
    case '1.2.840.10008.1.2.4.51':
      return '-xx';
    case '1.2.840.10008.1.2.4.57':
    case '1.2.840.10008.1.2.4.70':
      return '-xs';
    case '1.2.840.10008.1.2.4.90':
      return '-xv';
    case '1.2.840.10008.1.2.4.91':
      return '-xw';
    case '1.2.840.10008.1.2.4.80':
      return '-xt';
    case '1.2.840.10008.1.2.4.81':
      return '-xu';
    case '1.2.840.10008.1.2.5':
      return '-xr';
    default:
      return '-xe';
  }
}

export interface Fixture {
  name: string;
  path: string;
  transferSyntaxUid: string;
  sopClassUid: string;
  sopInstanceUid: string;
  /** SHA-256 of the data set bytes (after the meta group). */
  datasetSha256: string;
  datasetLength: number;
}

/**
 * Source files from pydicom's test data, in several transfer syntaxes (uncompressed, JPEG,
 * JPEG 2000, JPEG-LS, RLE), with sequences and private elements.
 */
export const FIXTURE_SOURCES = [
  'CT_small.dcm', // explicit VR LE
  'MR_small_implicit.dcm', // implicit VR LE
  'MR_small_bigendian.dcm', // explicit VR BE
  'rtplan.dcm', // implicit, nested sequences
  'rtstruct.dcm',
  'test-SR.dcm', // SR, deep sequences
  'waveform_ecg.dcm',
  'SC_rgb_jpeg_dcmtk.dcm', // JPEG baseline
  'JPGExtended.dcm', // JPEG extended
  'JPEG2000.dcm', // JPEG 2000
  'MR_small_jpeg_ls_lossless.dcm', // JPEG-LS
  'SC_rgb_rle.dcm', // RLE
];

/**
 * Makes fixtures in `dir`: each source is rewritten by dcmtk (no trailing padding) and given a
 * unique SOP Instance UID, so that dcmtk's storescu sends exactly the file's data set bytes.
 */
export async function makeFixtures(dir: string, sources: readonly string[] = FIXTURE_SOURCES): Promise<Fixture[]> {
  const fixtures: Fixture[] = [];
  let n = 0;
  for (const source of sources) {
    n++;
    const path = join(dir, `fixture-${n}-${source}`);
    await runOk('dcmconv', ['-q', '-p', join(PYDICOM_TEST_FILES, source), path]);
    const uid = `2.25.${process.pid}${Date.now() % 1_000_000}${n}`;
    await runOk('dcmodify', ['-q', '-nb', '-m', `(0008,0018)=${uid}`, path]);
    const d = await datasetOfFile(path);
    fixtures.push({
      name: source,
      path,
      transferSyntaxUid: d.transferSyntaxUid,
      sopClassUid: d.sopClassUid,
      sopInstanceUid: d.sopInstanceUid,
      datasetSha256: sha256(d.dataset),
      datasetLength: d.dataset.length,
    });
  }
  return fixtures;
}
