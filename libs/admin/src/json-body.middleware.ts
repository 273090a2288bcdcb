import { BadRequestException, Injectable, type NestMiddleware, PayloadTooLargeException, UnsupportedMediaTypeException } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';

const MAX_BYTES = 64 * 1024;

/**
 * Small JSON bodies for the admin API. The app runs with `bodyParser: false` (STOW-RS streams its
 * bodies), so the admin routes parse theirs here: application/json only, at most 64 KiB.
 */
@Injectable()
export class JsonBodyMiddleware implements NestMiddleware {
  use(req: Request, _res: Response, next: NextFunction): void {
    if (req.method === 'GET' || req.method === 'DELETE' || req.method === 'HEAD') return next();
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') return next(new UnsupportedMediaTypeException('the body must be application/json'));
    const chunks: Buffer[] = [];
    let size = 0;
    let failed = false;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size > MAX_BYTES && !failed) {
        failed = true;
        next(new PayloadTooLargeException(`the body must be at most ${MAX_BYTES} bytes`));
        req.resume();
        return;
      }
      if (!failed) chunks.push(c);
    });
    req.on('error', (e) => {
      if (!failed) {
        failed = true;
        next(e);
      }
    });
    req.on('end', () => {
      if (failed) return;
      try {
        req.body = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
      } catch (e) {
        return next(new BadRequestException(`the body is not valid JSON: ${(e as Error).message}`));
      }
      next();
    });
  }
}
