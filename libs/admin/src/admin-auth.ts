import { createHash, timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';

/** Paths under /api that stay open with a token set: readiness probes of load balancers and orchestrators. */
const OPEN_PATHS = new Set(['/health']);

const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();

interface TokenGuardOptions {
  /** The realm of the WWW-Authenticate challenge. */
  realm: string;
  /** What the token protects and where it comes from, for the 401 reasons. */
  what: string;
  variable: string;
  /** Also accept HTTP Basic whose password is the token (any user name): clients that only do Basic. */
  basic: boolean;
  /** Requests let through without the token. */
  open(req: Request): boolean;
}

/** The token a request presents: Bearer, or (when allowed) the password of Basic. */
function presented(header: string, basic: boolean): string | undefined {
  const bearer = /^Bearer +(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1];
  const b = basic ? /^Basic +([A-Za-z0-9+/=]+)\s*$/i.exec(header) : null;
  if (!b) return undefined;
  const decoded = Buffer.from(b[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : decoded.slice(colon + 1);
}

/** One shared token on every request of a mounted path; constant-time (both sides hashed to one length first). */
function tokenGuard(token: string, o: TokenGuardOptions): RequestHandler {
  const expected = digest(token);
  const challenge = o.basic ? `Bearer realm="${o.realm}", Basic realm="${o.realm}"` : `Bearer realm="${o.realm}"`;
  const how = o.basic ? `"Authorization: Bearer <${o.variable}>" (or Basic with it as the password)` : `"Authorization: Bearer <${o.variable}>"`;
  return (req: Request, res: Response, next: NextFunction) => {
    if (o.open(req)) return next();
    const got = presented(req.headers.authorization ?? '', o.basic);
    if (got !== undefined && timingSafeEqual(digest(got), expected)) return next();
    res
      .status(401)
      .set('WWW-Authenticate', challenge)
      .json({
        statusCode: 401,
        error: 'Unauthorized',
        message: got !== undefined ? `the ${o.what} token is not the one this archive was started with (${o.variable})` : `the ${o.what} needs ${how}`,
      });
  };
}

/**
 * Guards the admin API (mounted on /api) with one shared bearer token (VNA_ADMIN_TOKEN): AEs,
 * retention rules and holds, purges, tiers, lifecycle and migrations change what the archive
 * keeps and where it sends studies. `GET /api/health` stays open; DICOMweb is not under /api.
 */
export function adminTokenGuard(token: string): RequestHandler {
  return tokenGuard(token, {
    realm: 'vna-admin',
    what: 'admin API',
    variable: 'VNA_ADMIN_TOKEN',
    basic: false,
    open: (req) => (req.method === 'GET' || req.method === 'HEAD') && OPEN_PATHS.has(req.path),
  });
}

/**
 * Guards DICOMweb (mounted on /dicom-web and /wado) with one shared token (VNA_DICOMWEB_TOKEN):
 * STOW-RS, QIDO-RS, WADO-RS and WADO-URI serve and accept patients' images. Bearer, as DICOMweb
 * viewers send it, or HTTP Basic with the token as the password, for PACS and tools that only
 * do Basic. CORS preflights (OPTIONS, which carry no credentials) pass.
 */
export function dicomwebTokenGuard(token: string): RequestHandler {
  return tokenGuard(token, {
    realm: 'vna-dicomweb',
    what: 'DICOMweb API',
    variable: 'VNA_DICOMWEB_TOKEN',
    basic: true,
    open: (req) => req.method === 'OPTIONS',
  });
}
