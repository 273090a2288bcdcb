import { isValidUid } from '#vna/dicom';
import {
  BadRequestException,
  Body,
  ConflictException,
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  Res,
  NotFoundException,
  Param,
  Post,
  Query,
  UseFilters,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import type { Response } from 'express';
import { type CapacityCheckResult, CapacityService } from './capacity/capacity.service.js';
import type { MoveRow } from './move.repository.js';
import { RestoreRequestService } from './restore-request.service.js';
import type { RestoreRow } from './restore.repository.js';
import { MoveStudyDto } from './move.dto.js';
import { EvaluateQueryDto } from './policy/policy.dto.js';
import { TieringErrorFilter } from './tiering.errors.js';
import type { StudyLocationsView } from './locations-view.js';
import { TieringService, type TierView } from './tiering.service.js';

function checkUid(uid: string): void {
  if (!isValidUid(uid)) throw new BadRequestException(`study UID ${JSON.stringify(uid)} is not a valid UID`);
}

/**
 * Storage tiers and moves: `GET /api/storage/tiers`, `GET /api/storage/moves/{id}`,
 * `POST /api/storage/capacity/check[?dryRun=true]`.
 */
@Controller('api/storage')
@UseFilters(TieringErrorFilter)
export class StorageTiersController {
  constructor(
    private readonly tiering: TieringService,
    private readonly restores: RestoreRequestService,
    private readonly capacity: CapacityService,
  ) {}

  @Get('tiers')
  async tiers(): Promise<TierView[]> {
    return this.capacity.withCapacity(await this.tiering.tiers());
  }

  /** One capacity check of the hot tier now: the plan; without dryRun=true its demotions are journaled and enqueued. 409 without watermarks. */
  @Post('capacity/check')
  @HttpCode(HttpStatus.OK)
  @UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
  async capacityCheck(@Query() query: EvaluateQueryDto): Promise<CapacityCheckResult> {
    const result = await this.capacity.check({ dryRun: query.dryRun === 'true' });
    if (!result) throw new ConflictException('another capacity check is running; try again when it is done');
    return result;
  }

  @Get('moves/:id')
  async move(@Param('id') id: string): Promise<MoveRow> {
    const move = await this.tiering.move(id);
    if (!move) throw new NotFoundException(`move ${id} does not exist`);
    return move;
  }

  @Get('restores/:id')
  async restore(@Param('id') id: string): Promise<RestoreRow> {
    const restore = await this.restores.get(id);
    if (!restore) throw new NotFoundException(`restore ${id} does not exist`);
    return restore;
  }
}

/** A study's copies: `GET /api/studies/{uid}/locations`, `POST /api/studies/{uid}/move`. */
@Controller('api/studies')
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
@UseFilters(TieringErrorFilter)
export class StudyTieringController {
  constructor(
    private readonly tiering: TieringService,
    private readonly restores: RestoreRequestService,
  ) {}

  /**
   * 202: a restore of the study's offline copies into the hot tier is journaled and enqueued
   * (follow it at /api/storage/restores/{restoreId}); 200 when no copy is offline (nothing to do).
   */
  @Post(':uid/restore')
  async restore(
    @Param('uid') uid: string,
    @Res({ passthrough: true }) res: Response,
  ): Promise<{ restoreId: string; state: string; created: boolean; instancesOffline: number } | { restoreId: null; state: 'NOTHING_OFFLINE'; message: string }> {
    checkUid(uid);
    const result = await this.restores.request(uid, 'api');
    if (result.kind === 'nothing-offline') {
      res.status(HttpStatus.OK);
      return { restoreId: null, state: 'NOTHING_OFFLINE', message: `no instance of study ${uid} has its current copy on an offline tier (or it is restored already)` };
    }
    res.status(HttpStatus.ACCEPTED);
    return { restoreId: result.restore.id, state: result.restore.state, created: result.created, instancesOffline: result.instancesOffline };
  }

  @Get(':uid/locations')
  async locations(@Param('uid') uid: string): Promise<StudyLocationsView> {
    checkUid(uid);
    return this.tiering.studyLocations(uid);
  }

  /** 202: the move is journaled and enqueued; follow it at /api/storage/moves/{moveId}. */
  @Post(':uid/move')
  @HttpCode(HttpStatus.ACCEPTED)
  async move(@Param('uid') uid: string, @Body() dto: MoveStudyDto): Promise<{ moveId: string; state: string; targetTier: string; created: boolean }> {
    checkUid(uid);
    const { move, created } = await this.tiering.requestMove(uid, dto.targetTier, 'api');
    return { moveId: move.id, state: move.state, targetTier: move.targetTier, created };
  }
}
