import { MigrationState } from '#vna/catalog';
import { JobName, JobQueueService } from '#vna/jobs';
import { Injectable, Logger } from '@nestjs/common';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { isDicomdir } from './dicomdir.js';
import type { CreateMigrationDto, MigrationSourceDto, MigrationThrottleDto } from './migration.dto.js';
import { type MigrationJob, MigrationRepository, type MigrationSource, type MigrationThrottle } from './migration.repository.js';
import { MigrationRunnerService } from './migration-runner.service.js';
import { figuresOf, type LedgerRow, type MigrationFigures, RATE_WINDOW_SECONDS, reportCsv } from './report.js';

export enum MigrationErrorCode {
  NotFound = 'MIGRATION_NOT_FOUND',
  InvalidTransition = 'MIGRATION_INVALID_TRANSITION',
  Invalid = 'MIGRATION_INVALID',
}

export class MigrationError extends Error {
  constructor(
    readonly code: MigrationErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'MigrationError';
  }
}

export interface MigrationView extends MigrationJob {
  figures: MigrationFigures;
}

export interface MigrationReport {
  migration: MigrationView;
  studies: LedgerRow[];
}

const ALLOWED: Record<'pause' | 'resume' | 'cancel', MigrationState[]> = {
  pause: [MigrationState.Scheduled, MigrationState.Running],
  resume: [MigrationState.Paused],
  cancel: [MigrationState.Scheduled, MigrationState.Running, MigrationState.Paused],
};

/** Migration jobs for the admin API: create, list, state changes, throttle, report. */
@Injectable()
export class MigrationService {
  private readonly logger = new Logger('Migration');

  constructor(
    private readonly repo: MigrationRepository,
    private readonly jobs: JobQueueService,
    private readonly runner: MigrationRunnerService,
  ) {}

  async create(dto: CreateMigrationDto): Promise<MigrationView> {
    const order = dto.order ?? 'newest-first';
    const scope = { ...(dto.scope ?? {}) };
    if (order === 'list' && !scope.studyInstanceUids?.length) {
      throw new MigrationError(MigrationErrorCode.Invalid, 'scope.studyInstanceUids must list the studies when order is "list"');
    }
    if (scope.studyDateFrom && scope.studyDateTo && scope.studyDateFrom > scope.studyDateTo) {
      throw new MigrationError(MigrationErrorCode.Invalid, 'scope.studyDateFrom must not be after scope.studyDateTo');
    }
    const job = await this.repo.create({
      name: dto.name,
      source: await this.sourceOf(dto.source),
      scope,
      order,
      throttle: {
        maxAssociations: dto.throttle?.maxAssociations ?? 2,
        maxInstancesPerSecond: dto.throttle?.maxInstancesPerSecond ?? null,
        windows: (dto.throttle?.windows ?? []).map(({ start, end }) => ({ start, end })),
        timeZone: dto.throttle?.timeZone ?? 'UTC',
      },
    });
    const s = job.source;
    const from = s.kind === 'dimse' ? `${s.aeTitle}@${s.host}:${s.port}` : s.kind === 'dicomweb' ? s.baseUrl : s.path;
    this.logger.log(`migration ${job.id} "${job.name}" from ${from} scheduled`);
    await this.jobs.queue({ name: JobName.MigrationEnumerate, data: { migrationId: job.id } }, { coalesce: false });
    return this.view(job);
  }

  private async sourceOf(dto: MigrationSourceDto): Promise<MigrationSource> {
    const cap = dto.maxResultsPerQuery !== undefined ? { maxResultsPerQuery: dto.maxResultsPerQuery } : {};
    if (dto.kind === 'dimse') {
      return { kind: 'dimse', aeTitle: dto.aeTitle!, host: dto.host!, port: dto.port!, retrieve: dto.retrieve!, ...cap };
    }
    if (dto.kind === 'dicomweb') {
      return { kind: 'dicomweb', baseUrl: dto.baseUrl!.replace(/\/+$/, ''), ...(dto.headers ? { headers: { ...dto.headers } } : {}), ...cap };
    }
    const where = path.resolve(dto.path!);
    const st = await stat(where).catch(() => null);
    if (st?.isDirectory()) return { kind: 'folder', path: where };
    // A DICOMDIR: its file-set is imported (the files it references, relative to its folder).
    if (st?.isFile() && (await isDicomdir(where).catch(() => false))) return { kind: 'folder', path: path.dirname(where), dicomdir: path.basename(where) };
    throw new MigrationError(
      MigrationErrorCode.Invalid,
      st?.isFile() ? `source.path ${where} is a file but not a DICOMDIR` : `source.path ${where} is not a directory or a DICOMDIR on the archive's host`,
    );
  }

  async list(): Promise<MigrationView[]> {
    const jobs = await this.repo.list();
    return Promise.all(jobs.map((j) => this.view(j)));
  }

  async get(id: string): Promise<MigrationView> {
    return this.view(await this.load(id));
  }

  async report(id: string): Promise<MigrationReport> {
    const job = await this.load(id);
    const [studies, view] = await Promise.all([this.repo.ledger(id).then((rows) => rows.map(({ migrationId: _m, ...row }) => row)), this.view(job)]);
    return { migration: view, studies };
  }

  async reportCsv(id: string): Promise<string> {
    await this.load(id);
    return reportCsv(await this.repo.ledger(id));
  }

  async pause(id: string): Promise<MigrationView> {
    return this.view(await this.transition(id, 'pause', MigrationState.Paused));
  }

  async cancel(id: string): Promise<MigrationView> {
    return this.view(await this.transition(id, 'cancel', MigrationState.Canceled));
  }

  /** PAUSED → RUNNING (or SCHEDULED when it was paused before its studies were listed); re-enqueue. */
  async resume(id: string): Promise<MigrationView> {
    const before = await this.load(id);
    const to = before.startedAt ? MigrationState.Running : MigrationState.Scheduled;
    const job = await this.transition(id, 'resume', to);
    if (to === MigrationState.Running) {
      await this.runner.enqueueOpenRows(id);
      await this.repo.completeIfDone(id);
    } else {
      await this.jobs.queue({ name: JobName.MigrationEnumerate, data: { migrationId: id } }, { coalesce: false });
    }
    return this.view((await this.repo.get(id)) ?? job);
  }

  async setThrottle(id: string, throttle: MigrationThrottleDto): Promise<MigrationView> {
    await this.load(id);
    const t: Partial<MigrationThrottle> = {};
    if (throttle.windows !== undefined) t.windows = throttle.windows.map(({ start, end }) => ({ start, end }));
    if (throttle.timeZone !== undefined) t.timeZone = throttle.timeZone;
    if (throttle.maxAssociations !== undefined) t.maxAssociations = throttle.maxAssociations;
    if (throttle.maxInstancesPerSecond !== undefined) t.maxInstancesPerSecond = throttle.maxInstancesPerSecond;
    const job = await this.repo.setThrottle(id, t);
    if (!job) throw new MigrationError(MigrationErrorCode.NotFound, `migration ${id} does not exist`);
    return this.view(job);
  }

  private async transition(id: string, action: keyof typeof ALLOWED, to: MigrationState): Promise<MigrationJob> {
    const before = await this.load(id);
    const job = await this.repo.transition(id, ALLOWED[action], to);
    if (!job) {
      throw new MigrationError(MigrationErrorCode.InvalidTransition, `migration ${id} is ${before.state}: cannot ${action} (allowed from ${ALLOWED[action].join(', ')})`);
    }
    this.logger.log(`migration ${id}: ${before.state} -> ${job.state}`);
    return job;
  }

  private async load(id: string): Promise<MigrationJob> {
    const job = /^\d{1,18}$/.test(id) ? await this.repo.get(id) : null;
    if (!job) throw new MigrationError(MigrationErrorCode.NotFound, `migration ${id} does not exist`);
    return job;
  }

  /**
   * The job with its figures: counts from the ledger summed in PostgreSQL (a watcher polling a
   * job of 100,000 studies does not load them all); elapsed time, recent rate and ETA from the
   * database's receive times.
   */
  private async view(job: MigrationJob): Promise<MigrationView> {
    const [groups, activity] = await Promise.all([this.repo.ledgerGroups(job.id), this.repo.activity(job.id, RATE_WINDOW_SECONDS)]);
    return { ...job, source: publicSource(job.source), figures: figuresOf(groups, activity?.until ?? new Date(), job, activity ?? undefined) };
  }
}

/** A source as the API shows it: header values (credentials) masked. */
function publicSource(src: MigrationSource): MigrationSource {
  if (src.kind !== 'dicomweb' || !src.headers) return src;
  return { ...src, headers: Object.fromEntries(Object.keys(src.headers).map((k) => [k, '***'])) };
}
