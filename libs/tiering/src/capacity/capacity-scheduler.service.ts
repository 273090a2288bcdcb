import { VNA_CONFIG, type VnaConfig } from '#vna/config';
import { JobName, JobQueueService } from '#vna/jobs';
import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { CapacityService } from './capacity.service.js';

/**
 * Upserts the BullMQ job scheduler of capacity checks (every VNA_CAPACITY_INTERVAL_S) when the hot
 * tier has watermarks, and removes it otherwise (or with VNA_CAPACITY_INTERVAL_S=0).
 */
@Injectable()
export class CapacitySchedulerService implements OnApplicationBootstrap {
  private readonly logger = new Logger(CapacitySchedulerService.name);

  constructor(
    private readonly jobs: JobQueueService,
    private readonly capacity: CapacityService,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {}

  async onApplicationBootstrap() {
    const every = this.capacity.configured() ? this.config.capacityIntervalMs : 0;
    try {
      await this.jobs.scheduleEvery('capacity-check', { name: JobName.CapacityCheck, data: {} }, every);
    } catch (e) {
      this.logger.warn(`could not schedule capacity checks: ${(e as Error).message}`);
    }
  }
}
