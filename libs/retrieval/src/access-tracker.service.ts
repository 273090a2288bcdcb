import { type AuditEntry, AuditEventRepository, LocationRepository } from '#vna/catalog';
import { PromotionService } from '#vna/tiering';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';

const FLUSH_MS = 2000;
const MAX_PENDING_EVENTS = 10_000;

/**
 * Records study access times for lifecycle rules, and retrievals in the audit trail, batched:
 * retrievals only add to a set and a list; one UPDATE and one INSERT per interval write them.
 * Once a batch's access times are written, its studies are offered for promotion on access
 * (PromotionService: journaled moves back to hot). Never on a retrieval's path.
 */
@Injectable()
export class AccessTrackerService implements OnApplicationShutdown {
  private readonly logger = new Logger(AccessTrackerService.name);
  private pending = new Set<string>();
  private events: AuditEntry[] = [];
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly locations: LocationRepository,
    private readonly audit: AuditEventRepository,
    private readonly promotion: PromotionService,
  ) {}

  touch(studyUid: string): void {
    this.pending.add(studyUid);
    this.arm();
  }

  /** A retrieval for the audit trail (`STUDY_RETRIEVED`: who, how, what). */
  retrieved(entry: { actor: string; studyIuid: string; detail: Record<string, unknown> }): void {
    // Bounded: a database that does not answer for long loses the oldest entries, never memory.
    if (this.events.length >= MAX_PENDING_EVENTS) this.events.shift();
    this.events.push({ type: 'STUDY_RETRIEVED', ...entry });
    this.arm();
  }

  private arm(): void {
    if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  }

  async flush(): Promise<void> {
    this.timer = undefined;
    const batch = [...this.pending];
    this.pending = new Set();
    const events = this.events;
    this.events = [];
    if (batch.length) {
      const touched = await this.locations.touchStudies(batch).then(
        () => true,
        (e) => {
          this.logger.warn(`access times not recorded (will retry): ${(e as Error).message}`);
          batch.forEach((u) => this.pending.add(u));
          this.arm();
          return false;
        },
      );
      // A promotion that fails is not retried: the study's next retrieval offers it again.
      if (touched && this.promotion.enabled()) {
        await this.promotion.afterAccess(batch).catch((e) => this.logger.warn(`promotion on access failed: ${(e as Error).message}`));
      }
    }
    if (events.length) {
      await this.audit.append(events).catch((e) => {
        this.logger.warn(`${events.length} retrieval audit event(s) not recorded (will retry): ${(e as Error).message}`);
        this.events.unshift(...events.slice(-MAX_PENDING_EVENTS));
        this.arm();
      });
    }
  }

  async onApplicationShutdown() {
    clearTimeout(this.timer);
    await this.flush();
  }
}
