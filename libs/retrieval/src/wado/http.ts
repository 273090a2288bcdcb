import { HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Response } from 'express';
import { ResponseClosedError } from './multipart.js';
import { type ResponsePlan, WadoError, WadoErrorCode } from './wado.service.js';

const STATUS: Record<WadoErrorCode, HttpStatus> = {
  [WadoErrorCode.BadRequest]: HttpStatus.BAD_REQUEST,
  [WadoErrorCode.NotFound]: HttpStatus.NOT_FOUND,
  [WadoErrorCode.Gone]: HttpStatus.GONE,
  [WadoErrorCode.NotAcceptable]: HttpStatus.NOT_ACCEPTABLE,
  [WadoErrorCode.Unsupported]: HttpStatus.NOT_IMPLEMENTED,
  [WadoErrorCode.RestorePending]: HttpStatus.SERVICE_UNAVAILABLE,
};

const logger = new Logger('WADO');

/**
 * Domain errors -> HTTP errors at the edge (before anything was sent). A pending restore also sets
 * Retry-After on `res` (the exception filter keeps headers already set).
 */
export function toHttp(e: unknown, res?: Response): unknown {
  if (e instanceof WadoError) {
    if (e.retryAfterS !== undefined && res) res.setHeader('Retry-After', String(e.retryAfterS));
    return new HttpException(e.message, STATUS[e.code]);
  }
  return e;
}

/**
 * Sends a plan: status and headers, then the streamed body. A failure after the status line
 * destroys the response (the client sees a broken transfer, never a completed one).
 */
export async function send(res: Response, plan: ResponsePlan): Promise<void> {
  res.status(plan.status);
  for (const [k, v] of Object.entries(plan.headers)) res.setHeader(k, v);
  try {
    await plan.write(res);
    res.end();
  } catch (e) {
    if (!(e instanceof ResponseClosedError)) logger.error(`response aborted: ${(e as Error).message}`);
    res.destroy(e as Error);
  }
}
