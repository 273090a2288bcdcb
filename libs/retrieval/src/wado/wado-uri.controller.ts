import { isValidUid } from '#vna/dicom';
import { Controller, Get, HttpException, HttpStatus, Query, Res, UseInterceptors } from '@nestjs/common';
import { RetrievalAuditInterceptor } from './retrieval-audit.interceptor.js';
import type { Response } from 'express';
import { send, toHttp } from './http.js';
import { type ResponsePlan, WadoService } from './wado.service.js';

const REQUIRED = ['requestType', 'studyUID', 'seriesUID', 'objectUID'] as const;
/** Parameters that ask for rendering or de-identification, which the archive does not do. */
const RENDERING = ['rows', 'columns', 'region', 'windowCenter', 'windowWidth', 'frameNumber', 'imageQuality', 'presentationUID', 'presentationSeriesUID', 'annotation'];

/** WADO-URI (PS3.18 9): one object as stored (application/dicom); no rendering. */
@Controller()
@UseInterceptors(RetrievalAuditInterceptor)
export class WadoUriController {
  constructor(private readonly wado: WadoService) {}

  @Get('wado')
  async get(@Query() q: Record<string, unknown>, @Res() res: Response): Promise<void> {
    const one = (name: string): string | undefined => {
      const v = q[name];
      if (v === undefined) return undefined;
      if (typeof v !== 'string') throw new HttpException(`parameter "${name}" must be given once`, HttpStatus.BAD_REQUEST);
      return v;
    };
    const missing = REQUIRED.filter((n) => !one(n));
    if (missing.length) throw new HttpException(`missing required parameter(s): ${missing.join(', ')}`, HttpStatus.BAD_REQUEST);
    if (one('requestType') !== 'WADO') {
      throw new HttpException(`parameter "requestType" must be WADO, not "${one('requestType')}"`, HttpStatus.BAD_REQUEST);
    }
    for (const name of ['studyUID', 'seriesUID', 'objectUID']) {
      if (!isValidUid(one(name)!)) throw new HttpException(`invalid UID "${one(name)}" in parameter "${name}"`, HttpStatus.BAD_REQUEST);
    }
    // PS3.18 9.1.2.1.5: the default is image/jpeg (which needs rendering unless the object is a JPEG).
    const contentTypes = (one('contentType') ?? 'image/jpeg').split(',').map((s) => s.split(';')[0]!.trim().toLowerCase()).filter(Boolean);
    const transferSyntax = one('transferSyntax');
    if (transferSyntax !== undefined && transferSyntax !== '*' && !isValidUid(transferSyntax)) {
      throw new HttpException(`invalid UID "${transferSyntax}" in parameter "transferSyntax"`, HttpStatus.BAD_REQUEST);
    }
    const rendering = RENDERING.filter((n) => q[n] !== undefined);
    if (rendering.length && contentTypes.every((t) => t === 'application/dicom')) {
      throw new HttpException(`parameter(s) ${rendering.join(', ')} are not allowed with contentType application/dicom`, HttpStatus.BAD_REQUEST);
    }
    if (rendering.length) {
      throw new HttpException(`the archive does not render: cannot honour ${rendering.join(', ')}`, HttpStatus.NOT_ACCEPTABLE);
    }
    if (one('anonymize') === 'yes') throw new HttpException('the archive does not de-identify objects (anonymize=yes)', HttpStatus.NOT_ACCEPTABLE);
    let plan: ResponsePlan;
    try {
      plan = await this.wado.wadoUri({ studyUid: one('studyUID')!, seriesUid: one('seriesUID')!, sopUid: one('objectUID')! }, contentTypes, transferSyntax);
    } catch (e) {
      throw toHttp(e, res);
    }
    await send(res, plan);
  }
}
