import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { JobName, JobQueueService } from '#vna/jobs';
import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';

/** Upserts (or removes, VNA_LIFECYCLE_INTERVAL_S=0) the BullMQ job scheduler of policy evaluations. */
@Injectable()
export class LifecycleSchedulerService implements OnApplicationBootstrap {
  private readonly logger = new Logger(LifecycleSchedulerService.name);

  constructor(
    private readonly jobs: JobQueueService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {}

  async onApplicationBootstrap() {
    try {
      await this.jobs.scheduleEvery('lifecycle-evaluate', { name: JobName.LifecycleEvaluate, data: {} }, this.config.lifecycleIntervalMs);
    } catch (e) {
      this.logger.warn(`could not schedule lifecycle evaluations: ${(e as Error).message}`);
    }
  }
}
