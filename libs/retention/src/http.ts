import { domainErrorFilter } from '#vna/admin';
import { BadRequestException, ConflictException, createParamDecorator, type ExecutionContext, NotFoundException, ValidationPipe } from '@nestjs/common';
import type { Request } from 'express';

export enum RetentionErrorCode {
  NotFound = 'NOT_FOUND',
  Conflict = 'CONFLICT',
  Invalid = 'INVALID',
}

/** A domain error of the retention services; mapped to HTTP only at the edge (RetentionErrorFilter). */
export class RetentionError extends Error {
  constructor(
    readonly code: RetentionErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'RetentionError';
  }
}

export const RetentionErrorFilter = domainErrorFilter(RetentionError, {
  [RetentionErrorCode.NotFound]: NotFoundException,
  [RetentionErrorCode.Conflict]: ConflictException,
  [RetentionErrorCode.Invalid]: BadRequestException,
});

/** The validation the admin API uses (same options as /api/aes). */
export const retentionValidation = () => new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true });

const ACTOR_RE = /^[\x21-\x7e\u00a0-\uffff][\x20-\x7e\u00a0-\uffff]{0,127}$/;

/**
 * Who makes a change: the `X-User` header (1-128 printable characters), set by the authenticating
 * reverse proxy in front of the admin API. Required on every request that changes something.
 */
export const Actor = createParamDecorator((_: unknown, ctx: ExecutionContext): string => {
  const raw = ctx.switchToHttp().getRequest<Request>().headers['x-user'];
  const value = (Array.isArray(raw) ? raw[0] : raw)?.trim();
  if (!value) throw new BadRequestException('X-User header is required (who makes this change)');
  if (!ACTOR_RE.test(value)) throw new BadRequestException('X-User header must be 1-128 printable characters');
  return value;
});

/** A numeric id path parameter, or 404. */
export function parseId(value: string, what: string): string {
  if (!/^[1-9]\d{0,17}$/.test(value)) throw new NotFoundException(`${what} ${JSON.stringify(value)} does not exist`);
  return value;
}
