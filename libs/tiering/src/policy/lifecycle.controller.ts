import {
  BadRequestException,
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  HttpStatus,
  NotFoundException,
  Post,
  Put,
  Query,
  UseFilters,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { TieringErrorFilter } from '../tiering.errors.js';
import { type EvaluationResult, LifecycleService } from './lifecycle.service.js';
import { EvaluateQueryDto, LifecyclePolicyDto } from './policy.dto.js';
import type { PolicyVersion } from './policy.repository.js';

/**
 * `GET/PUT /api/lifecycle/policy` (every PUT is a new version; `?version=N` reads an earlier one),
 * `GET /api/lifecycle/policy/versions`, `POST /api/lifecycle/evaluate[?dryRun=true]`.
 * Who saved a version comes from the `X-User` header, as for every admin change (`X-VNA-User` is
 * accepted too; default "api"); each version is also an audit event (LIFECYCLE_POLICY_SAVED).
 */
@Controller('api/lifecycle')
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
@UseFilters(TieringErrorFilter)
export class LifecycleController {
  constructor(private readonly lifecycle: LifecycleService) {}

  @Get('policy')
  async policy(@Query('version') version?: string): Promise<PolicyVersion> {
    if (version !== undefined && !/^\d{1,9}$/.test(version)) throw new BadRequestException('version must be a positive integer');
    const p = await this.lifecycle.policy(version === undefined ? undefined : Number(version));
    if (!p) throw new NotFoundException(`lifecycle policy version ${version} does not exist`);
    return p;
  }

  @Get('policy/versions')
  versions() {
    return this.lifecycle.versions();
  }

  @Put('policy')
  async save(
    @Body() dto: LifecyclePolicyDto,
    @Headers('x-user') user?: string,
    @Headers('x-vna-user') legacyUser?: string,
  ): Promise<PolicyVersion> {
    // Its only domain error is an unknown tier (400).
    return this.lifecycle.save(dto, (user ?? legacyUser ?? '').trim().slice(0, 64) || 'api');
  }

  /** The plan (moves, per-tier bytes and monthly cost before/after); without dryRun=true the moves are enqueued. */
  @Post('evaluate')
  @HttpCode(HttpStatus.OK)
  evaluate(@Query() query: EvaluateQueryDto): Promise<EvaluationResult> {
    return this.lifecycle.evaluate({ dryRun: query.dryRun === 'true' });
  }
}
