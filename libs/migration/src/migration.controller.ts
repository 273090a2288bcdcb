import { domainErrorFilter } from '#vna/admin';
import {
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  NotFoundException,
  Param,
  Patch,
  Post,
  Query,
  Res,
  UseFilters,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import type { Response } from 'express';
import { CreateMigrationDto, UpdateMigrationDto } from './migration.dto.js';
import { MigrationError, MigrationErrorCode, type MigrationReport, MigrationService, type MigrationView } from './migration.service.js';

/** Migration errors -> HTTP. */
export const MigrationErrorFilter = domainErrorFilter(MigrationError, {
  [MigrationErrorCode.NotFound]: NotFoundException,
  [MigrationErrorCode.InvalidTransition]: ConflictException,
  [MigrationErrorCode.Invalid]: BadRequestException,
});

/** Migration jobs from legacy archives: `/api/migrations`. */
@Controller('api/migrations')
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
@UseFilters(MigrationErrorFilter)
export class MigrationController {
  constructor(private readonly migrations: MigrationService) {}

  @Post()
  create(@Body() dto: CreateMigrationDto): Promise<MigrationView> {
    return this.migrations.create(dto);
  }

  @Get()
  list(): Promise<MigrationView[]> {
    return this.migrations.list();
  }

  @Get(':id')
  get(@Param('id') id: string): Promise<MigrationView> {
    return this.migrations.get(id);
  }

  @Patch(':id')
  update(@Param('id') id: string, @Body() dto: UpdateMigrationDto): Promise<MigrationView> {
    return this.migrations.setThrottle(id, dto.throttle);
  }

  @Post(':id/pause')
  @HttpCode(HttpStatus.OK)
  pause(@Param('id') id: string): Promise<MigrationView> {
    return this.migrations.pause(id);
  }

  @Post(':id/resume')
  @HttpCode(HttpStatus.OK)
  resume(@Param('id') id: string): Promise<MigrationView> {
    return this.migrations.resume(id);
  }

  @Post(':id/cancel')
  @HttpCode(HttpStatus.OK)
  cancel(@Param('id') id: string): Promise<MigrationView> {
    return this.migrations.cancel(id);
  }

  /** The per-study report: JSON, or `?format=csv`. */
  @Get(':id/report')
  async report(@Param('id') id: string, @Query('format') format: string | undefined, @Res({ passthrough: true }) res: Response): Promise<MigrationReport | string> {
    if (format !== undefined && format !== 'json' && format !== 'csv') throw new BadRequestException('format must be json or csv');
    if (format === 'csv') {
      const csv = await this.migrations.reportCsv(id);
      res.setHeader('Content-Type', 'text/csv; charset=utf-8');
      res.setHeader('Content-Disposition', `attachment; filename="migration-${id}.csv"`);
      return csv;
    }
    return this.migrations.report(id);
  }
}
