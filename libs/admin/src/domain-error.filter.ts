import { type ArgumentsHost, Catch, type ExceptionFilter, type HttpException, type Type } from '@nestjs/common';
import type { Response } from 'express';

/** An HTTP exception class of @nestjs/common built from a message (NotFoundException, ...). */
export type HttpExceptionClass = new (message: string) => HttpException;

/** A domain error class whose instances carry a code enum (`MigrationError`, `TieringError`, ...). */
export type CodedErrorClass<C extends string> = abstract new (...args: never[]) => Error & { readonly code: C };

/**
 * Domain errors -> HTTP at the edge, one table per error class: every code names the HTTP
 * exception it becomes (a `Record` over the enum, so a new code does not compile until it is
 * mapped). The body is that exception's own (`{ message, error, statusCode }`, the domain error's
 * message unchanged). Errors of other classes are returned as they are.
 */
export function domainErrorToHttp<C extends string>(errorClass: CodedErrorClass<C>, table: Record<C, HttpExceptionClass>): (e: unknown) => unknown {
  return (e) => (e instanceof errorClass ? new table[e.code](e.message) : e);
}

/**
 * The same mapping as an exception filter for `@UseFilters(...)` on a controller: it catches only
 * `errorClass` and answers with the mapped status and body; anything else goes on to Nest's
 * default handling.
 */
export function domainErrorFilter<C extends string>(errorClass: CodedErrorClass<C>, table: Record<C, HttpExceptionClass>): Type<ExceptionFilter> {
  const toHttp = domainErrorToHttp(errorClass, table);

  @Catch(errorClass)
  class DomainErrorFilter implements ExceptionFilter {
    catch(e: Error, host: ArgumentsHost) {
      const http = toHttp(e) as HttpException;
      host.switchToHttp().getResponse<Response>().status(http.getStatus()).json(http.getResponse());
    }
  }
  Object.defineProperty(DomainErrorFilter, 'name', { value: `${errorClass.name}Filter` });
  return DomainErrorFilter;
}
