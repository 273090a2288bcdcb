/**
 * The archive's migration API over HTTP (Node's fetch). The CLI is a plain HTTP client: it never
 * loads the Nest application; the server's types are imported as types only (erased at build).
 */
import type { LedgerRow, MigrationReport, MigrationView } from '#vna/migration';

/** What JSON makes of a server type: dates become ISO strings. */
export type Wire<T> = T extends Date ? string : T extends Array<infer U> ? Array<Wire<U>> : T extends object ? { [K in keyof T]: Wire<T[K]> } : T;

export type Migration = Wire<MigrationView>;
export type Report = Wire<MigrationReport>;
export type Study = Wire<LedgerRow>;

/** The archive answered with an error status; `message` is its explanation (Nest: `message`, a string or a list). */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    message: string,
    readonly body: unknown,
  ) {
    super(message);
  }
}

/** The archive could not be reached at all (refused, DNS, reset). */
export class UnreachableError extends Error {
  override name = 'UnreachableError';
}

function explain(status: number, statusText: string, text: string): { message: string; body: unknown } {
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // plain text
  }
  const m = (body as { message?: unknown } | null)?.message;
  const detail = Array.isArray(m) ? m.join('; ') : typeof m === 'string' ? m : text.slice(0, 500);
  return { message: `${status} ${statusText}${detail ? `: ${detail}` : ''}`, body };
}

export class VnaApi {
  readonly baseUrl: string;

  /** `token`: the archive's VNA_ADMIN_TOKEN, sent as a bearer token when given. */
  constructor(
    baseUrl: string,
    private readonly token?: string,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, '');
  }

  private async send(method: string, path: string, body?: unknown): Promise<Response> {
    let r: Response;
    try {
      r = await fetch(`${this.baseUrl}${path}`, {
        method,
        headers: {
          Accept: 'application/json',
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
          ...(this.token ? { Authorization: `Bearer ${this.token}` } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      throw new UnreachableError(`cannot reach the archive at ${this.baseUrl}: ${cause?.code ?? cause?.message ?? (e as Error).message}`);
    }
    if (!r.ok) {
      const { message, body: parsed } = explain(r.status, r.statusText, await r.text());
      throw new ApiError(r.status, message, parsed);
    }
    return r;
  }

  private async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    return (await (await this.send(method, path, body)).json()) as T;
  }

  create(body: unknown): Promise<Migration> {
    return this.json('POST', '/api/migrations', body);
  }

  list(): Promise<Migration[]> {
    return this.json('GET', '/api/migrations');
  }

  get(id: string): Promise<Migration> {
    return this.json('GET', `/api/migrations/${encodeURIComponent(id)}`);
  }

  action(id: string, action: 'pause' | 'resume' | 'cancel'): Promise<Migration> {
    return this.json('POST', `/api/migrations/${encodeURIComponent(id)}/${action}`);
  }

  throttle(id: string, throttle: unknown): Promise<Migration> {
    return this.json('PATCH', `/api/migrations/${encodeURIComponent(id)}`, { throttle });
  }

  report(id: string): Promise<Report> {
    return this.json('GET', `/api/migrations/${encodeURIComponent(id)}/report`);
  }

  async reportCsv(id: string): Promise<string> {
    return (await this.send('GET', `/api/migrations/${encodeURIComponent(id)}/report?format=csv`)).text();
  }
}
