import { type ArgumentsHost, BadRequestException, ConflictException, NotFoundException } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { domainErrorFilter, domainErrorToHttp } from './domain-error.filter.js';

enum Code {
  Missing = 'MISSING',
  Clash = 'CLASH',
  Bad = 'BAD',
}

class ThingError extends Error {
  constructor(
    readonly code: Code,
    message: string,
  ) {
    super(message);
  }
}

const table = { [Code.Missing]: NotFoundException, [Code.Clash]: ConflictException, [Code.Bad]: BadRequestException };

/** What the filter writes to the response. */
function answer(e: Error): { status?: number; body?: unknown } {
  const out: { status?: number; body?: unknown } = {};
  const res = {
    status(s: number) {
      out.status = s;
      return res;
    },
    json(b: unknown) {
      out.body = b;
      return res;
    },
  };
  const host = { switchToHttp: () => ({ getResponse: () => res }) } as unknown as ArgumentsHost;
  new (domainErrorFilter(ThingError, table))().catch(e, host);
  return out;
}

describe('domain error -> HTTP', () => {
  it('maps each code to its exception with the message unchanged', () => {
    const toHttp = domainErrorToHttp(ThingError, table);
    const e = toHttp(new ThingError(Code.Missing, 'thing 7 does not exist'));
    expect(e).toBeInstanceOf(NotFoundException);
    expect((e as NotFoundException).getResponse()).toEqual({ message: 'thing 7 does not exist', error: 'Not Found', statusCode: 404 });
    expect(toHttp(new ThingError(Code.Clash, 'c'))).toBeInstanceOf(ConflictException);
    expect(toHttp(new ThingError(Code.Bad, 'b'))).toBeInstanceOf(BadRequestException);
  });

  it('passes other errors through as they are', () => {
    const other = new Error('boom');
    expect(domainErrorToHttp(ThingError, table)(other)).toBe(other);
  });

  it('the filter answers with the same status and body as the Nest exception', () => {
    expect(answer(new ThingError(Code.Bad, 'rules.0.targetTier must be one of hot, cold'))).toEqual({
      status: 400,
      body: { message: 'rules.0.targetTier must be one of hot, cold', error: 'Bad Request', statusCode: 400 },
    });
    expect(answer(new ThingError(Code.Clash, 'purge 3 is RUNNING'))).toEqual({
      status: 409,
      body: { message: 'purge 3 is RUNNING', error: 'Conflict', statusCode: 409 },
    });
  });

  it('the filter catches only its error class and is named after it', () => {
    const Filter = domainErrorFilter(ThingError, table);
    expect(Filter.name).toBe('ThingErrorFilter');
    expect(Reflect.getMetadata('__filterCatchExceptions__', Filter)).toEqual([ThingError]);
  });
});
