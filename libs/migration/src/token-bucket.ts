/**
 * A token bucket: at most `capacity + rate * t` tokens are handed out in any interval of t
 * seconds. Takers reserve a token (the count may go negative) and wait for their reservation, so
 * concurrent takers are served in order and the bound holds for all of them together. The rate
 * can change at any time (PATCH /api/migrations/{id}); reservations already made keep their time.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;

  constructor(
    private rate: number,
    private readonly capacity = 1,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(rate > 0)) throw new Error('rate must be > 0');
    this.tokens = capacity;
    this.last = now();
  }

  get currentRate(): number {
    return this.rate;
  }

  setRate(rate: number): void {
    if (!(rate > 0)) throw new Error('rate must be > 0');
    this.refill();
    this.rate = rate;
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.capacity, this.tokens + ((t - this.last) / 1000) * this.rate);
    this.last = t;
  }

  /** Reserve one token; returns how long (ms) to wait before using it (0: at once). */
  reserve(): number {
    this.refill();
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.rate) * 1000;
  }

  /** Wait for one token. */
  async take(signal?: AbortSignal): Promise<void> {
    const wait = this.reserve();
    if (wait <= 0) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, wait);
      signal?.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      }, { once: true });
    });
  }
}
