import { isValidUid } from '#vna/dicom';
import { Controller, HttpException, HttpStatus, Logger, Param, Post, Req, Res } from '@nestjs/common';
import Dicer from 'dicer';
import type { Request, Response } from 'express';
import { PassThrough } from 'node:stream';
import { IngestError } from './ingest.errors.js';
import { IngestService, type IngestResult } from './ingest.service.js';
import { failureReasonFor } from './status-map.js';
import { StowLimits } from './stow-limits.js';

/**
 * Parts of one request stored at once. A part's bytes are durable and recorded before its entry
 * is reported, as for one at a time; several in flight overlap one part's fsync and database
 * commit with the next part's transfer. Each waiting part holds at most its 1 MiB buffer.
 */
const PARTS_IN_FLIGHT = 4;

interface PartFailure {
  sopClassUid?: string;
  sopInstanceUid?: string;
  reason: number;
  comment: string;
}

/** STOW-RS (PS3.18 10.5): multipart/related; type="application/dicom", streamed part by part. */
@Controller('dicom-web/studies')
export class StowController {
  private readonly logger = new Logger(StowController.name);

  constructor(
    private readonly ingest: IngestService,
    private readonly limits: StowLimits,
  ) {}

  @Post()
  async storeAll(@Req() req: Request, @Res() res: Response): Promise<void> {
    await this.stow(req, res, undefined);
  }

  @Post(':study')
  async storeStudy(@Param('study') study: string, @Req() req: Request, @Res() res: Response): Promise<void> {
    if (!isValidUid(study)) {
      throw new HttpException(`invalid Study Instance UID "${study}" in the path`, HttpStatus.BAD_REQUEST);
    }
    await this.stow(req, res, study);
  }

  private async stow(req: Request, res: Response, studyUid: string | undefined): Promise<void> {
    const boundary = this.boundaryOf(req.headers['content-type']);
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > this.limits.maxBytes) {
      req.resume();
      throw new HttpException(`request body of ${declared} bytes exceeds the limit of ${this.limits.maxBytes}`, HttpStatus.PAYLOAD_TOO_LARGE);
    }

    // One outcome per part, in the order of the parts.
    const outcomes: Array<{ stored?: IngestResult; failed?: PartFailure }> = [];
    const source = `HTTP:${req.socket.remoteAddress ?? ''}`;
    let received = 0;
    let tooLarge = false;

    await new Promise<void>((resolve, reject) => {
      const parser = new Dicer({ boundary });
      // Part bodies not yet fully consumed: failed with the request when it is cut short, so the
      // ingest of a half-received part revokes its temporary object instead of waiting forever.
      const parts = new Set<PassThrough>();
      const failParts = (reason: string) => {
        for (const p of parts) p.destroy(new Error(reason));
      };
      const running: Promise<void>[] = [];
      let active = 0;
      const waiting: Array<() => void> = [];
      const slot = async () => {
        if (active >= PARTS_IN_FLIGHT) await new Promise<void>((r) => waiting.push(r));
        active++;
      };
      const release = () => {
        active--;
        waiting.shift()?.();
      };
      let finished = false;
      const done = (e?: Error) => {
        if (finished) return;
        finished = true;
        Promise.all(running).then(() => (e ? reject(e) : resolve()), reject);
      };
      parser.on('part', (part) => {
        // Hold the part's bytes until its headers are known, then stream them into ingest.
        const body = new PassThrough({ highWaterMark: 1024 * 1024 });
        parts.add(body);
        body.once('close', () => parts.delete(body));
        body.on('error', () => undefined); // reported through ingest, or by the request's own error
        let contentType = '';
        part.on('header', (headers: Record<string, string[]>) => {
          contentType = (headers['content-type']?.[0] ?? '').toLowerCase();
        });
        part.on('error', (e: Error) => body.destroy(e));
        part.pipe(body);
        const index = outcomes.length;
        outcomes.push({});
        const headersKnown = new Promise<void>((r) => part.once('header', () => r()).once('end', () => r()).once('error', () => r()));
        running.push((async () => {
          await slot();
          try {
            await headersKnown;
            outcomes[index] = await this.storePart(body, contentType, source, studyUid);
          } finally {
            release();
          }
        })());
      });
      parser.on('finish', () => done());
      parser.on('error', (e: Error) => done(new HttpException(`malformed multipart body: ${e.message}`, HttpStatus.BAD_REQUEST)));
      req.on('data', (chunk: Buffer) => {
        received += chunk.length;
        if (received > this.limits.maxBytes && !tooLarge) {
          tooLarge = true;
          failParts('request body exceeds the size limit');
          req.unpipe(parser);
          parser.destroy?.();
          done(new HttpException(`request body exceeds the limit of ${this.limits.maxBytes} bytes`, HttpStatus.PAYLOAD_TOO_LARGE));
        }
      });
      req.on('aborted', () => {
        failParts('client aborted the request');
        done(new HttpException('client aborted the request', HttpStatus.BAD_REQUEST));
      });
      req.pipe(parser);
    });

    const stored = outcomes.flatMap((o) => (o.stored ? [o.stored] : []));
    const failed = outcomes.flatMap((o) => (o.failed ? [o.failed] : []));
    if (stored.length === 0 && failed.length === 0) {
      throw new HttpException('the multipart body holds no parts', HttpStatus.BAD_REQUEST);
    }
    const base = `${req.protocol}://${req.get('host')}/dicom-web`;
    const body: Record<string, unknown> = {};
    if (studyUid) body['00081190'] = { vr: 'UR', Value: [`${base}/studies/${studyUid}`] };
    if (stored.length) {
      body['00081199'] = {
        vr: 'SQ',
        Value: stored.map((s) => ({
          '00081150': { vr: 'UI', Value: [s.sopClassUid] },
          '00081155': { vr: 'UI', Value: [s.sopInstanceUid] },
          '00081190': { vr: 'UR', Value: [`${base}/studies/${s.studyInstanceUid}/series/${s.seriesInstanceUid}/instances/${s.sopInstanceUid}`] },
        })),
      };
    }
    if (failed.length) {
      body['00081198'] = {
        vr: 'SQ',
        Value: failed.map((f) => ({
          '00081150': f.sopClassUid ? { vr: 'UI', Value: [f.sopClassUid] } : { vr: 'UI' },
          '00081155': f.sopInstanceUid ? { vr: 'UI', Value: [f.sopInstanceUid] } : { vr: 'UI' },
          '00081197': { vr: 'US', Value: [f.reason] },
          // Not a standard attribute of the item: a human-readable reason (Error Comment).
          '00000902': { vr: 'LO', Value: [f.comment.slice(0, 64)] },
        })),
      };
      for (const f of failed) this.logger.warn(`STOW failure 0x${f.reason.toString(16)}: ${f.comment}`);
    }
    const status = failed.length === 0 ? HttpStatus.OK : stored.length === 0 ? HttpStatus.CONFLICT : HttpStatus.ACCEPTED;
    res.status(status).type('application/dicom+json').send(JSON.stringify(body));
    const perStudy = new Map<string, number>();
    for (const s of stored) perStudy.set(s.studyInstanceUid, (perStudy.get(s.studyInstanceUid) ?? 0) + 1);
    void this.ingest.senderDone(perStudy, { actor: source, via: 'STOW-RS' });
  }

  private async storePart(
    body: PassThrough,
    contentType: string,
    source: string,
    studyUid: string | undefined,
  ): Promise<{ stored?: IngestResult; failed?: PartFailure }> {
    if (!contentType.startsWith('application/dicom') || contentType.startsWith('application/dicom+')) {
      body.resume();
      return { failed: { reason: 0xc000, comment: `part of type "${contentType || 'none'}" is not application/dicom` } };
    }
    if (body.destroyed) {
      return { failed: { reason: 0x0110, comment: 'the request ended before this part was received' } };
    }
    try {
      return { stored: await this.ingest.store({ data: body, kind: 'part10', sourceAe: source, expectedStudyUid: studyUid }) };
    } catch (e) {
      body.resume();
      if (e instanceof IngestError) {
        return { failed: { reason: failureReasonFor(e.code), comment: e.message, sopClassUid: e.sopClassUid, sopInstanceUid: e.sopInstanceUid } };
      }
      this.logger.error(`STOW part failed: ${(e as Error).stack}`);
      return { failed: { reason: 0x0110, comment: (e as Error).message } };
    }
  }

  private boundaryOf(contentType: string | undefined): string {
    const ct = contentType ?? '';
    if (!/^multipart\/related/i.test(ct)) {
      throw new HttpException('Content-Type must be multipart/related; type="application/dicom"', HttpStatus.UNSUPPORTED_MEDIA_TYPE);
    }
    const type = /type="?([^";]+)"?/i.exec(ct)?.[1]?.toLowerCase();
    if (type && type !== 'application/dicom') {
      throw new HttpException(`multipart/related type "${type}" is not supported; use application/dicom`, HttpStatus.UNSUPPORTED_MEDIA_TYPE);
    }
    const boundary = /boundary="?([^";]+)"?/i.exec(ct)?.[1];
    if (!boundary) throw new HttpException('multipart/related Content-Type has no boundary', HttpStatus.BAD_REQUEST);
    return boundary;
  }
}
