import {
  Body,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  ParseBoolPipe,
  Post,
  Put,
  Query,
  Res,
  UseFilters,
  UsePipes,
} from '@nestjs/common';
import type { Response } from 'express';
import { AuditRepository, type AuditEvent, type AuditFilter } from './audit.repository.js';
import { AuditFormat, AuditQueryDto, CreatePurgeDto, LegalHoldDto, ListHoldsQueryDto, PageQueryDto, RejectPurgeDto, ReleaseHoldQueryDto, RuleDto } from './dto.js';
import { ExpiryService } from './expiry.service.js';
import { HoldsService } from './holds.service.js';
import { Actor, parseId, RetentionErrorFilter, retentionValidation } from './http.js';
import { PurgeService } from './purge.service.js';
import { RulesService } from './rules.service.js';

/** Retention rules. Every change needs `X-User` and makes a new version (GET :id lists them). */
@Controller('api/retention/rules')
@UsePipes(retentionValidation())
@UseFilters(RetentionErrorFilter)
export class RulesController {
  constructor(private readonly rules: RulesService) {}

  @Get()
  list(@Query('includeDeleted', new ParseBoolPipe({ optional: true })) includeDeleted?: boolean) {
    return this.rules.list(includeDeleted ?? false);
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.rules.get(parseId(id, 'retention rule'));
  }

  @Post()
  create(@Body() dto: RuleDto, @Actor() actor: string) {
    return this.rules.create(dto, actor);
  }

  @Put(':id')
  update(@Param('id') id: string, @Body() dto: RuleDto, @Actor() actor: string) {
    return this.rules.update(parseId(id, 'retention rule'), dto, actor);
  }

  @Delete(':id')
  delete(@Param('id') id: string, @Actor() actor: string) {
    return this.rules.delete(parseId(id, 'retention rule'), actor);
  }
}

/** The expired list and purge batches. */
@Controller('api/retention')
@UsePipes(retentionValidation())
@UseFilters(RetentionErrorFilter)
export class PurgesController {
  constructor(private readonly purges: PurgeService) {}

  @Get('expired')
  expired(@Query() q: PageQueryDto) {
    return this.purges.expired(q.limit ?? 100, q.offset ?? 0);
  }

  @Post('purges')
  create(@Body() dto: CreatePurgeDto, @Actor() actor: string) {
    return this.purges.create(actor, dto.studyInstanceUids);
  }

  @Get('purges')
  list(@Query() q: PageQueryDto) {
    return this.purges.list(q.limit ?? 100, q.offset ?? 0);
  }

  @Get('purges/:id')
  report(@Param('id') id: string) {
    return this.purges.report(parseId(id, 'purge'));
  }

  @Post('purges/:id/approve')
  @HttpCode(HttpStatus.OK)
  approve(@Param('id') id: string, @Actor() actor: string) {
    return this.purges.approve(parseId(id, 'purge'), actor);
  }

  @Post('purges/:id/reject')
  @HttpCode(HttpStatus.OK)
  reject(@Param('id') id: string, @Body() dto: RejectPurgeDto, @Actor() actor: string) {
    return this.purges.reject(parseId(id, 'purge'), actor, dto.reason);
  }
}

/** Why a study expires when it does. */
@Controller('api/studies')
@UseFilters(RetentionErrorFilter)
export class StudyRetentionController {
  constructor(private readonly expiry: ExpiryService) {}

  @Get(':uid/retention')
  explain(@Param('uid') uid: string) {
    return this.expiry.explain(uid);
  }
}

/** Legal holds on a patient (PatientID [+ issuer]) or a study. */
@Controller('api/legal-holds')
@UsePipes(retentionValidation())
@UseFilters(RetentionErrorFilter)
export class HoldsController {
  constructor(private readonly holds: HoldsService) {}

  @Post()
  place(@Body() dto: LegalHoldDto, @Actor() actor: string) {
    return this.holds.place(dto, actor);
  }

  @Get()
  list(@Query() q: ListHoldsQueryDto) {
    return this.holds.list({ active: q.active === undefined ? undefined : q.active === 'true', patientId: q.patientId, studyIuid: q.studyInstanceUid });
  }

  @Get(':id')
  get(@Param('id') id: string) {
    return this.holds.get(parseId(id, 'legal hold'));
  }

  /** Release (the hold is kept, marked released, and the release audited). */
  @Delete(':id')
  release(@Param('id') id: string, @Query() q: ReleaseHoldQueryDto, @Actor() actor: string) {
    return this.holds.release(parseId(id, 'legal hold'), actor, q.reason);
  }
}

const CSV_COLUMNS = ['id', 'at', 'type', 'studyInstanceUid', 'sopInstanceUid', 'actor', 'detail'] as const;
const csvCell = (v: unknown) => {
  const s = v === null || v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** The audit trail: filtered, paginated (json) or exported whole (ndjson, csv). */
@Controller('api/audit')
@UsePipes(retentionValidation())
export class AuditController {
  constructor(private readonly audit: AuditRepository) {}

  @Get()
  async list(@Query() q: AuditQueryDto, @Res() res: Response): Promise<void> {
    const filter: AuditFilter = { types: q.type?.split(','), studyIuid: q.study, actor: q.actor, from: q.from, to: q.to };
    const format = q.format ?? AuditFormat.Json;
    if (format === AuditFormat.Json) {
      const limit = q.limit ?? 100;
      const offset = q.offset ?? 0;
      const page = await this.audit.list(filter, limit, offset);
      res.json({ total: page.total, limit, offset, items: page.items });
      return;
    }
    const line = (e: AuditEvent) => (format === AuditFormat.Ndjson ? `${JSON.stringify(e)}\n` : `${CSV_COLUMNS.map((c) => csvCell(e[c])).join(',')}\r\n`);
    res.status(200).type(format === AuditFormat.Ndjson ? 'application/x-ndjson' : 'text/csv; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="audit.${format}"`);
    if (format === AuditFormat.Csv) res.write(`${CSV_COLUMNS.join(',')}\r\n`);
    for await (const e of this.audit.iterate(filter)) {
      if (!res.write(line(e))) await new Promise((r) => res.once('drain', r));
    }
    res.end();
  }
}
