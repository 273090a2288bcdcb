import { HOT_STORAGE } from '#vna/ingest';
import type { StorageBackend } from '#vna/storage';
import { InjectQueue } from '@nestjs/bullmq';
import { QueueName } from '#vna/jobs';
import { Controller, Get, HttpStatus, Inject, Res } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { Queue } from 'bullmq';
import type { Response } from 'express';
import type { DataSource } from 'typeorm';

/** Readiness: 200 once the database, Redis and the hot storage answer; 503 naming what does not. */
@Controller('api')
export class HealthController {
  constructor(
    @InjectDataSource() private readonly db: DataSource,
    @InjectQueue(QueueName.Index) private readonly queue: Queue,
    @Inject(HOT_STORAGE) private readonly hot: StorageBackend,
  ) {}

  @Get('health')
  async health(@Res() res: Response) {
    const checks: Record<string, string> = {};
    const probe = async (name: string, fn: () => Promise<unknown>) => {
      try {
        await Promise.race([fn(), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), 3000))]);
        checks[name] = 'up';
      } catch (e) {
        checks[name] = `down: ${(e as Error).message}`;
      }
    };
    await Promise.all([
      probe('database', () => this.db.query('SELECT 1')),
      probe('redis', () => this.queue.getJobCounts('waiting')),
      probe(`storage:${this.hot.id}`, () => this.hot.health()),
    ]);
    const ok = Object.values(checks).every((v) => v === 'up');
    res.status(ok ? HttpStatus.OK : HttpStatus.SERVICE_UNAVAILABLE).json({ status: ok ? 'ok' : 'unavailable', checks });
  }
}
