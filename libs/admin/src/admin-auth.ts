import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Paths under /api that stay open with a token set: readiness probes of load balancers and orchestrators. */
const OPEN_PATHS = new Set(['/health']);

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

/**
 * Guards the admin API (mounted on /api) with one shared bearer token (VNA_ADMIN_TOKEN): AEs,
 * retention rules and holds, purges, tiers, lifecycle and migrations change what the archive
 * keeps and where it sends studies. `GET /api/health` stays open; DICOMweb is not under /api.
 * The comparison is constant-time (both sides hashed to the same length first).
 */
export function adminTokenGuard(token: string): RequestHandler {
  const expected = digest(token);
  return (req: Request, res: Response, next: NextFunction) => {
    if ((req.method === 'GET' || req.method === 'HEAD') && OPEN_PATHS.has(req.path)) return next();
    const header = req.headers.authorization ?? '';
    const m = /^Bearer +(\S+)\s*$/i.exec(header);
    if (m && timingSafeEqual(digest(m[1]!), expected)) return next();
    res
      .status(401)
      .set('WWW-Authenticate', 'Bearer realm="vna-admin"')
      .json({
        statusCode: 401,
        error: 'Unauthorized',
        message: m ? 'the admin token is not the one this archive was started with (VNA_ADMIN_TOKEN)' : 'the admin API needs "Authorization: Bearer <VNA_ADMIN_TOKEN>"',
      });
  };
}
