/** What a retrieval knows about the restore it waits for (from the study_restore journal). */
export interface RestoreProgress {
  instancesTotal: number;
  instancesRestored: number;
  startedAt: Date | null;
  /** The S3 RestoreObject stage of a restore from a GLACIER / DEEP_ARCHIVE tier: its next poll. */
  archive?: { nextPollAt: Date | null } | null;
}

export const DEFAULT_RETRY_AFTER_S = 5;

/**
 * Seconds a client should wait before asking again (Retry-After): the time the restore still
 * needs at the rate it has copied so far, between 1 s and 1 h; 5 s before anything was copied.
 */
export function retryAfterSeconds(progress: RestoreProgress | undefined, now: Date): number {
  // Waiting for S3 to restore archived objects: nothing changes before the next poll.
  const poll = progress?.archive?.nextPollAt;
  if (poll && poll.getTime() > now.getTime()) return Math.min(3600, Math.max(1, Math.ceil((poll.getTime() - now.getTime()) / 1000)));
  if (!progress?.startedAt || progress.instancesRestored <= 0 || progress.instancesTotal <= 0) return DEFAULT_RETRY_AFTER_S;
  const left = Math.max(0, progress.instancesTotal - progress.instancesRestored);
  if (left === 0) return 1;
  const elapsedS = Math.max(0, (now.getTime() - progress.startedAt.getTime()) / 1000);
  const estimate = Math.ceil((elapsedS / progress.instancesRestored) * left);
  return Math.min(3600, Math.max(1, estimate));
}
