import { QueryError, QueryLevel } from '#vna/catalog';
import { Controller, Get, HttpException, HttpStatus, Param, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { type QidoScope, QueryService } from './query.service.js';

type QidoLevel = Exclude<QueryLevel, QueryLevel.Patient>;

/** QIDO-RS (PS3.18 10.6): studies, series and instances, plain and nested. */
@Controller('dicom-web')
export class QidoController {
  constructor(private readonly query: QueryService) {}

  @Get('studies')
  studies(@Query() q: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
    return this.run(QueryLevel.Study, q, {}, req, res);
  }

  @Get('series')
  allSeries(@Query() q: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
    return this.run(QueryLevel.Series, q, {}, req, res);
  }

  @Get('studies/:study/series')
  studySeries(@Param('study') study: string, @Query() q: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
    return this.run(QueryLevel.Series, q, { studyUid: study }, req, res);
  }

  @Get('instances')
  allInstances(@Query() q: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
    return this.run(QueryLevel.Image, q, {}, req, res);
  }

  @Get('studies/:study/instances')
  studyInstances(@Param('study') study: string, @Query() q: Record<string, unknown>, @Req() req: Request, @Res() res: Response) {
    return this.run(QueryLevel.Image, q, { studyUid: study }, req, res);
  }

  @Get('studies/:study/series/:series/instances')
  seriesInstances(
    @Param('study') study: string,
    @Param('series') series: string,
    @Query() q: Record<string, unknown>,
    @Req() req: Request,
    @Res() res: Response,
  ) {
    return this.run(QueryLevel.Image, q, { studyUid: study, seriesUid: series }, req, res);
  }

  private async run(level: QidoLevel, q: Record<string, unknown>, scope: QidoScope, req: Request, res: Response) {
    const accept = String(req.headers.accept ?? '*/*').toLowerCase();
    if (!/json|\*\/\*|application\/\*/.test(accept)) {
      throw new HttpException(`cannot produce ${accept}; QIDO-RS answers in application/dicom+json`, HttpStatus.NOT_ACCEPTABLE);
    }
    try {
      const spec = this.query.parseQido(level, q, scope);
      const base = `${req.protocol}://${req.get('host')}/dicom-web`;
      const result = await this.query.qido(level, spec, scope, base);
      if (result.truncated) res.setHeader('Warning', '299 VNA "The number of results exceeded the maximum; use limit and offset"');
      res.status(HttpStatus.OK).type('application/dicom+json').send(JSON.stringify(result.datasets));
    } catch (e) {
      if (e instanceof QueryError) throw new HttpException(e.message, HttpStatus.BAD_REQUEST);
      throw e;
    }
  }
}
