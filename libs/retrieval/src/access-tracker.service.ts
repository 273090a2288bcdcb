import { LocationRepository } from '#vna/catalog';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';

const FLUSH_MS = 2000;

/**
 * Records study access times for lifecycle rules, batched: retrievals only add a UID to a set;
 * one UPDATE per interval writes them. Never on a retrieval's path.
 */
@Injectable()
export class AccessTrackerService implements OnApplicationShutdown {
  private readonly logger = new Logger(AccessTrackerService.name);
  private pending = new Set<string>();
  private timer?: NodeJS.Timeout;

  constructor(private readonly locations: LocationRepository) {}

  touch(studyUid: string): void {
    this.pending.add(studyUid);
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  async flush(): Promise<void> {
    this.timer = undefined;
    if (!this.pending.size) return;
    const batch = [...this.pending];
    this.pending = new Set();
    await this.locations.touchStudies(batch).catch((e) => {
      this.logger.warn(`access times not recorded (will retry): ${(e as Error).message}`);
      batch.forEach((u) => this.pending.add(u));
    });
  }

  async onApplicationShutdown() {
    clearTimeout(this.timer);
    await this.flush();
  }
}
