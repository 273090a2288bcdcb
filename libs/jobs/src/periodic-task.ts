/**
 * The skeleton of the archive's in-process background loops (reconcilers, sweepers): run once at
 * start, then every `everyMs`, never two runs at once, failures reported and the loop kept going.
 *
 * - `start()` begins the first run at once (synchronously, before it returns) and arms an
 *   unref'd interval timer, so the loop never keeps a process alive by itself.
 * - A tick that comes while a run is in flight is skipped (no overlap, no queue of runs).
 * - A run that throws or rejects is given to `onError`; the next tick runs as usual.
 * - `stop()` clears the timer and **waits for the run in flight** (if any) to settle, so after it
 *   resolves nothing of the loop touches the database or the queues any more. No run starts
 *   after `stop()`. `start()` after `stop()` starts the loop again.
 *
 * Which process runs a loop is decided by the module that provides its service (roles), not here.
 * The services start it in `onApplicationBootstrap` and stop it at shutdown.
 */
export interface PeriodicTaskOptions {
  /** Milliseconds between the starts of two ticks (setInterval). */
  everyMs: number;
  /** One run; `first` is true for the run at start. */
  run: (first: boolean) => Promise<unknown>;
  /** A failed run (the loop goes on). */
  onError: (e: Error) => void;
}

export class PeriodicTask {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly options: PeriodicTaskOptions) {}

  start(): void {
    if (this.timer) return;
    this.tick(true);
    this.timer = setInterval(() => this.tick(false), this.options.everyMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** True while a run is in flight. */
  get busy(): boolean {
    return this.running !== undefined;
  }

  private tick(first: boolean): void {
    if (this.running) return;
    let run: Promise<unknown>;
    try {
      run = this.options.run(first);
    } catch (e) {
      run = Promise.reject(e as Error);
    }
    this.running = run
      .then(
        () => undefined,
        (e) => {
          try {
            this.options.onError(e as Error);
          } catch {
            // A reporter that throws must not turn into an unhandled rejection.
          }
        },
      )
      .finally(() => (this.running = undefined));
  }
}
