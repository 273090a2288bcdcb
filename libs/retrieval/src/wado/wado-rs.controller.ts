import { isValidUid } from '#vna/dicom';
import { Controller, Get, HttpException, HttpStatus, Param, Req, Res, UseInterceptors } from '@nestjs/common';
import { RetrievalAuditInterceptor } from './retrieval-audit.interceptor.js';
import type { Request, Response } from 'express';
import { parseAccept } from './accept.js';
import { send, toHttp } from './http.js';
import { type InstanceRef, type ResponsePlan, WadoService } from './wado.service.js';

const NAMES = { study: 'Study Instance UID', series: 'Series Instance UID', instance: 'SOP Instance UID' } as const;

function uidParam(name: keyof typeof NAMES, value: string): string {
  if (!isValidUid(value)) throw new HttpException(`invalid ${NAMES[name]} "${value}" in the path (parameter "${name}")`, HttpStatus.BAD_REQUEST);
  return value;
}

function frameList(value: string): number[] {
  const numbers = value.split(',').map((s) => s.trim());
  if (!numbers.length || numbers.some((s) => !/^\d{1,9}$/.test(s) || Number(s) < 1)) {
    throw new HttpException(`invalid frame list "${value}" (parameter "frames"): comma-separated frame numbers from 1`, HttpStatus.BAD_REQUEST);
  }
  return numbers.map(Number);
}

/** WADO-RS (PS3.18 10.4): instances, metadata, frames and bulk data, as stored. */
@Controller('dicom-web')
@UseInterceptors(RetrievalAuditInterceptor)
export class WadoRsController {
  constructor(private readonly wado: WadoService) {}

  @Get('studies/:study')
  study(@Param('study') study: string, @Req() req: Request, @Res() res: Response) {
    uidParam('study', study);
    return this.run(res, () => this.wado.retrieve({ studyUid: study }, parseAccept(req.headers.accept), `study ${study}`));
  }

  @Get('studies/:study/series/:series')
  series(@Param('study') study: string, @Param('series') series: string, @Req() req: Request, @Res() res: Response) {
    uidParam('study', study);
    uidParam('series', series);
    return this.run(res, () =>
      this.wado.retrieve({ studyUid: study, seriesUid: series }, parseAccept(req.headers.accept), `series ${series} of study ${study}`),
    );
  }

  @Get('studies/:study/series/:series/instances/:instance')
  instance(@Param() p: Record<string, string>, @Req() req: Request, @Res() res: Response) {
    const ref = this.ref(p);
    return this.run(res, () =>
      this.wado.retrieve(
        { studyUid: ref.studyUid, seriesUid: ref.seriesUid, sopUids: [ref.sopUid] },
        parseAccept(req.headers.accept),
        `instance ${ref.sopUid} of series ${ref.seriesUid} in study ${ref.studyUid}`,
      ),
    );
  }

  @Get('studies/:study/metadata')
  studyMetadata(@Param('study') study: string, @Req() req: Request, @Res() res: Response) {
    uidParam('study', study);
    return this.run(res, () => this.wado.metadata({ studyUid: study }, parseAccept(req.headers.accept), this.base(req), `study ${study}`));
  }

  @Get('studies/:study/series/:series/metadata')
  seriesMetadata(@Param('study') study: string, @Param('series') series: string, @Req() req: Request, @Res() res: Response) {
    uidParam('study', study);
    uidParam('series', series);
    return this.run(res, () =>
      this.wado.metadata({ studyUid: study, seriesUid: series }, parseAccept(req.headers.accept), this.base(req), `series ${series} of study ${study}`),
    );
  }

  @Get('studies/:study/series/:series/instances/:instance/metadata')
  instanceMetadata(@Param() p: Record<string, string>, @Req() req: Request, @Res() res: Response) {
    const ref = this.ref(p);
    return this.run(res, () =>
      this.wado.metadata(
        { studyUid: ref.studyUid, seriesUid: ref.seriesUid, sopUids: [ref.sopUid] },
        parseAccept(req.headers.accept),
        this.base(req),
        `instance ${ref.sopUid} of series ${ref.seriesUid} in study ${ref.studyUid}`,
      ),
    );
  }

  @Get('studies/:study/series/:series/instances/:instance/frames/:frames')
  frames(@Param() p: Record<string, string>, @Req() req: Request, @Res() res: Response) {
    const ref = this.ref(p);
    const numbers = frameList(p.frames ?? '');
    return this.run(res, () => this.wado.frames(ref, numbers, parseAccept(req.headers.accept)));
  }

  @Get('studies/:study/series/:series/instances/:instance/bulkdata/*path')
  bulkdata(@Param() p: Record<string, string | string[]>, @Req() req: Request, @Res() res: Response) {
    const ref = this.ref(p as Record<string, string>);
    const path = Array.isArray(p.path) ? p.path.join('/') : String(p.path ?? '');
    return this.run(res, () => this.wado.bulkdata(ref, path, parseAccept(req.headers.accept)));
  }

  private ref(p: Record<string, string>): InstanceRef {
    return {
      studyUid: uidParam('study', p.study ?? ''),
      seriesUid: uidParam('series', p.series ?? ''),
      sopUid: uidParam('instance', p.instance ?? ''),
    };
  }

  private base(req: Request): string {
    return `${req.protocol}://${req.get('host')}/dicom-web`;
  }

  private async run(res: Response, plan: () => Promise<ResponsePlan>): Promise<void> {
    let p: ResponsePlan;
    try {
      p = await plan();
    } catch (e) {
      throw toHttp(e, res);
    }
    await send(res, p);
  }
}
