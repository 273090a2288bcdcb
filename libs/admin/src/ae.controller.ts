import { AeErrorCode, AeRegistryError, type KnownAe } from '#vna/catalog';
import {
  Body,
  ConflictException,
  Controller,
  Delete,
  Get,
  HttpCode,
  HttpStatus,
  NotFoundException,
  Param,
  Post,
  UseFilters,
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { CreateAeDto } from './ae.dto.js';
import { AeRegistryService } from './ae-registry.service.js';
import { domainErrorFilter } from './domain-error.filter.js';

const AeRegistryErrorFilter = domainErrorFilter(AeRegistryError, { [AeErrorCode.Duplicate]: ConflictException });

/**
 * Known AEs: `POST/GET/DELETE /api/aes`, `GET/DELETE /api/aes/:aet`. A title is matched after
 * trimming, case-sensitively.
 */
@Controller('api/aes')
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
@UseFilters(AeRegistryErrorFilter)
export class AeController {
  constructor(private readonly registry: AeRegistryService) {}

  @Post()
  create(@Body() dto: CreateAeDto): Promise<KnownAe> {
    return this.registry.create(dto);
  }

  @Get()
  list(): Promise<KnownAe[]> {
    return this.registry.list();
  }

  @Get(':aet')
  async get(@Param('aet') aet: string): Promise<KnownAe> {
    const ae = await this.registry.get(aet);
    if (!ae) throw new NotFoundException(`AE title "${aet.trim()}" is not registered`);
    return ae;
  }

  @Delete(':aet')
  @HttpCode(HttpStatus.NO_CONTENT)
  async delete(@Param('aet') aet: string): Promise<void> {
    if (!(await this.registry.delete(aet))) throw new NotFoundException(`AE title "${aet.trim()}" is not registered`);
  }
}
