/**
 * Minimal logger interface, compatible with NestJS's `Logger`/`LoggerService` (log, warn, error,
 * debug). The layer never logs dataset contents, only association/operation metadata.
 */
export interface DimseLogger {
  log(message: string): void;
  warn(message: string): void;
  error(message: string, trace?: string): void;
  debug?(message: string): void;
}

/** Default logger: warnings and errors to the console, nothing else. */
export const consoleLogger: DimseLogger = {
  log: () => undefined,
  warn: (m) => console.warn(`[dimse] ${m}`),
  error: (m, trace) => console.error(`[dimse] ${m}${trace ? `\n${trace}` : ''}`),
};

export const silentLogger: DimseLogger = {
  log: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

export function errorMessage(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}

export function errorStack(e: unknown): string | undefined {
  return e instanceof Error ? e.stack : undefined;
}
