/** How long a free slot waits for more candidates before it is handed out (rows arrive a few ms apart). */
export const SLOT_GATHER_MS = 50;

/**
 * How long the lowest waiting row may be held back for a lower one that is due but has not
 * asked yet (its queue job is still on its way, or another process holds it): the migration
 * order is kept on a slow or busy host, and a row that never asks cannot stall the job.
 */
export const SLOT_ORDER_WAIT_MS = 2000;

/**
 * Counts associations per job in this process, so a job never holds more than its limit, and hands
 * free slots to the waiting rows in migration order: the lowest seq first, and not before the
 * job's lowest due row (`lowestDue`, from the database: leaving out the rows holding a slot here,
 * and only above a seq) has asked, for at most SLOT_ORDER_WAIT_MS. Rows below one that waited
 * that long are not waited for again (a row whose queue job was lost cannot slow every grant);
 * when they ask, they still go first.
 */
export class Slots {
  private active = 0;
  private readonly holding = new Set<number>();
  private readonly waiters: Array<{ seq: number; since: number; grant: () => void }> = [];
  private timer?: NodeJS.Timeout;
  private dispatching = false;
  /** Rows at or below this seq that have not asked are no longer waited for. */
  private waitedFor = Number.MIN_SAFE_INTEGER;

  constructor(
    private readonly limit: () => number,
    private readonly lowestDue: (holding: number[], above: number) => Promise<number | null>,
  ) {}

  acquire(seq: number): Promise<() => void> {
    return new Promise((resolve) => {
      this.waiters.push({
        seq,
        since: performance.now(),
        grant: () => {
          let done = false;
          resolve(() => {
            if (done) return;
            done = true;
            this.active--;
            this.holding.delete(seq);
            this.schedule(0);
          });
        },
      });
      this.schedule(SLOT_GATHER_MS);
    });
  }

  private schedule(ms: number): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.dispatch();
    }, ms);
  }

  private async dispatch(): Promise<void> {
    if (this.dispatching) return;
    this.dispatching = true;
    try {
      while (this.active < this.limit() && this.waiters.length) {
        this.waiters.sort((a, b) => a.seq - b.seq);
        const head = this.waiters[0]!;
        if (head.seq > this.waitedFor) {
          let lowest: number | null = null;
          try {
            lowest = await this.lowestDue([...this.holding], this.waitedFor);
          } catch {
            lowest = null; // the database is unavailable: order is best effort, the slot is not held back
          }
          if (lowest !== null && lowest < head.seq) {
            if (performance.now() - head.since < SLOT_ORDER_WAIT_MS) {
              this.schedule(SLOT_GATHER_MS);
              return;
            }
            this.waitedFor = head.seq - 1;
          }
          // Rows may have asked meanwhile: hand the slot to the lowest of them.
          this.waiters.sort((a, b) => a.seq - b.seq);
          if (this.waiters[0] !== head || this.active >= this.limit()) continue;
        }
        this.waiters.shift();
        this.active++;
        this.holding.add(head.seq);
        head.grant();
      }
    } finally {
      this.dispatching = false;
    }
  }
}
