#!/usr/bin/env node
/**
 * `vna`: the archive's command-line tool. It starts, watches and controls migration jobs through
 * the archive's HTTP API (`--url`, env VNA_URL); it never loads the Nest application.
 *
 * Exit codes: 0 done (a watched job COMPLETED), 1 the archive refused (4xx/5xx, printed with its
 * reason) or could not be reached, 2 bad usage, 3 a watched job FAILED (some studies failed),
 * 4 a watched job was CANCELED, 130 interrupted while watching (the job goes on).
 */
import { Command, CommanderError, Option } from 'commander';
import { readFileSync, writeFileSync } from 'node:fs';
import { ApiError, type Migration, UnreachableError, VnaApi } from './api.js';
import { listTable, progressLine, reportTable, summary } from './format.js';
import {
  collect,
  createBody,
  parseDate,
  parseDimse,
  parseHeader,
  parseIntArg,
  parseRate,
  parseWindow,
  type StartOptions,
  throttleBody,
  UsageError,
} from './options.js';
import { watch } from './watch.js';

export const EXIT = { ok: 0, api: 1, usage: 2, failed: 3, canceled: 4, interrupted: 130 } as const;

class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

const DEFAULT_URL = 'http://127.0.0.1:8080';

/** The package's version (dist/apps/cli/src/main.js → package.json at the root). */
function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function apiOf(cmd: Command): VnaApi {
  const { url, token } = cmd.optsWithGlobals() as { url: string; token?: string };
  return new VnaApi(url, token);
}

const print = (s: string) => process.stdout.write(`${s}\n`);

interface WatchFlags {
  interval: number;
  plain?: boolean;
}

/** Watch until the end, print the summary (and the failed studies), and give the exit code. */
async function watchToEnd(api: VnaApi, id: string, flags: WatchFlags): Promise<number> {
  const abort = new AbortController();
  const onSigint = () => abort.abort();
  process.once('SIGINT', onSigint);
  let m: Migration;
  try {
    m = await watch(api, id, {
      tty: !flags.plain && process.stdout.isTTY === true,
      pollMs: Math.min(1000, flags.interval * 1000),
      lineMs: flags.interval * 1000,
      out: process.stdout,
      signal: abort.signal,
    });
  } finally {
    process.off('SIGINT', onSigint);
  }
  if (abort.signal.aborted) {
    print(`stopped watching; migration ${id} is ${m.state} and goes on (vna migrate watch ${id})`);
    return EXIT.interrupted;
  }
  print(summary(m));
  if (m.state === 'FAILED' && m.figures.studies.failed > 0) {
    const failed = (await api.report(id)).studies.filter((s) => s.state === 'failed');
    print(`  failed studies (${failed.length}):`);
    for (const s of failed.slice(0, 20)) print(`    ${s.studyIuid || s.filePath}: ${s.lastError ?? ''}`);
    if (failed.length > 20) print(`    ... (vna migrate report ${id})`);
  }
  return m.state === 'COMPLETED' ? EXIT.ok : m.state === 'CANCELED' ? EXIT.canceled : EXIT.failed;
}

const intervalOption = () =>
  new Option('--interval <seconds>', 'without a terminal: print a line this often (and at every state change)').argParser(parseIntArg).default(5);

export function program(): Command {
  const root = new Command('vna')
    .description('Command-line tool of the VNA archive (talks to its HTTP API)')
    .version(version())
    .addOption(new Option('--url <url>', 'the archive\'s HTTP address').env('VNA_URL').default(DEFAULT_URL))
    .addOption(new Option('--token <token>', 'the archive\'s admin token, when it has one').env('VNA_ADMIN_TOKEN'))
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  const migrate = root.command('migrate').description('migration jobs from legacy archives (/api/migrations)');

  migrate
    .command('start')
    .description('create a migration job (POST /api/migrations)')
    .option('--name <name>', 'a name for the job (default: "migration from <source>")')
    .option('--dimse <AE@host:port>', 'source: a DICOM archive (C-FIND, then C-MOVE or C-GET)', parseDimse)
    .addOption(new Option('--retrieve <how>', 'DIMSE source: move (C-MOVE to this archive; the source must know its AE) or get (C-GET); default move').choices(['move', 'get']))
    .option('--folder <path>', 'source: a folder of DICOM files on the archive\'s host (absolute path)')
    .option('--dicomweb <url>', 'source: a DICOMweb archive\'s base URL (QIDO-RS, WADO-RS)')
    .option('--header <name:value>', 'DICOMweb source: an HTTP header to send (repeatable), e.g. "Authorization: Bearer x"', collect(parseHeader))
    .option('--from <date>', 'studies dated from (YYYY-MM-DD)', parseDate)
    .option('--to <date>', 'studies dated until (YYYY-MM-DD)', parseDate)
    .option('--modality <code>', 'only studies with this modality (repeatable)', collect(String))
    .option('--patient-id <id>', 'only this patient\'s studies (repeatable)', collect(String))
    .option('--accession <number>', 'only this accession number (repeatable)', collect(String))
    .option('--study <uid>', 'only this study (repeatable; with --order list, in this order)', collect(String))
    .addOption(new Option('--order <order>', 'migration order (default newest-first)').choices(['newest-first', 'oldest-first', 'list']))
    .option('--max-associations <n>', 'associations (or requests) at the source at once (default 2)', parseIntArg)
    .option('--rate <inst/s>', 'at most this many instances per second ("none": unlimited, the default)', parseRate)
    .option('--window <HH:MM-HH:MM>', 'run only inside this time window (repeatable; default always)', collect(parseWindow))
    .option('--tz <zone>', 'time zone of the windows (IANA, default UTC)')
    .option('--watch', 'then watch it until it ends (exit code as for "watch")')
    .addOption(intervalOption())
    .option('--plain', 'plain progress lines even on a terminal')
    .option('--json', 'print the created job as JSON')
    .action(async (o: StartOptions & WatchFlags & { watch?: boolean; json?: boolean }, cmd: Command) => {
      const api = apiOf(cmd);
      const m = await api.create(createBody(o));
      if (o.json) print(JSON.stringify(m, null, 2));
      else print(`migration ${m.id} "${m.name}" created (${m.state})`);
      if (o.watch) throw new Exit(await watchToEnd(api, m.id, o));
    });

  migrate
    .command('list')
    .description('every migration job with its state and figures')
    .option('--json', 'as JSON')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const jobs = await apiOf(cmd).list();
      print(o.json ? JSON.stringify(jobs, null, 2) : listTable(jobs));
    });

  migrate
    .command('status')
    .description('one job: state, counts, rate, ETA')
    .argument('<id>', 'migration id')
    .option('--json', 'as JSON (the API\'s answer)')
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      const m = await apiOf(cmd).get(id);
      print(o.json ? JSON.stringify(m, null, 2) : `${progressLine(m)}\n${summary(m)}`);
    });

  migrate
    .command('watch')
    .description('follow a job until it ends: a live bar (plain lines without a terminal), then the summary; exit 0 completed, 3 failed, 4 canceled')
    .argument('<id>', 'migration id')
    .addOption(intervalOption())
    .option('--plain', 'plain progress lines even on a terminal')
    .action(async (id: string, o: WatchFlags, cmd: Command) => {
      throw new Exit(await watchToEnd(apiOf(cmd), id, o));
    });

  for (const action of ['pause', 'resume', 'cancel'] as const) {
    migrate
      .command(action)
      .description(`${action} a job`)
      .argument('<id>', 'migration id')
      .option('--json', 'print the job as JSON')
      .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
        const m = await apiOf(cmd).action(id, action);
        print(o.json ? JSON.stringify(m, null, 2) : `migration ${m.id} is ${m.state}`);
      });
  }

  migrate
    .command('throttle')
    .description('change a job\'s throttle while it runs (PATCH /api/migrations/{id})')
    .argument('<id>', 'migration id')
    .option('--rate <inst/s>', 'at most this many instances per second ("none": unlimited)', parseRate)
    .option('--max-associations <n>', 'associations at the source at once', parseIntArg)
    .option('--window <HH:MM-HH:MM>', 'run only inside these windows (repeatable; replaces the current ones)', collect(parseWindow))
    .option('--always', 'no time windows (run at any time)')
    .option('--tz <zone>', 'time zone of the windows (IANA)')
    .option('--json', 'print the job as JSON')
    .action(async (id: string, o: Parameters<typeof throttleBody>[0] & { json?: boolean }, cmd: Command) => {
      if (o.always && o.window?.length) throw new UsageError('give --window or --always, not both');
      const t = throttleBody(o);
      if (!Object.keys(t).length) throw new UsageError('give at least one of --rate, --max-associations, --window, --always, --tz');
      const m = await apiOf(cmd).throttle(id, t);
      if (o.json) print(JSON.stringify(m, null, 2));
      else {
        const th = m.throttle;
        const windows = th.windows.length ? th.windows.map((w) => `${w.start}-${w.end}`).join(',') : 'always';
        print(`migration ${m.id}: max ${th.maxAssociations} associations, ${th.maxInstancesPerSecond ?? 'unlimited'} inst/s, windows ${windows} (${th.timeZone})`);
      }
    });

  migrate
    .command('report')
    .description('one line per source study: state, counts, bytes, attempts, last error')
    .argument('<id>', 'migration id')
    .option('--csv', 'the API\'s CSV')
    .option('--json', 'the API\'s JSON')
    .option('-o, --output <file>', 'write to this file instead of standard output')
    .action(async (id: string, o: { csv?: boolean; json?: boolean; output?: string }, cmd: Command) => {
      if (o.csv && o.json) throw new UsageError('give --csv or --json, not both');
      const api = apiOf(cmd);
      const text = o.csv ? await api.reportCsv(id) : o.json ? `${JSON.stringify(await api.report(id), null, 2)}\n` : `${reportTable(await api.report(id))}\n`;
      if (o.output) {
        writeFileSync(o.output, text);
        process.stderr.write(`report of migration ${id} written to ${o.output}\n`);
      } else process.stdout.write(text);
    });

  return root;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return EXIT.ok;
  } catch (e) {
    if (e instanceof Exit) return e.code;
    if (e instanceof CommanderError) {
      // help and --version end with code 0; usage errors were printed by commander
      return e.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return EXIT.usage;
    }
    if (e instanceof ApiError || e instanceof UnreachableError) {
      process.stderr.write(`error: ${e.message}\n`);
      return EXIT.api;
    }
    throw e;
  }
}

process.exitCode = await main(process.argv);
