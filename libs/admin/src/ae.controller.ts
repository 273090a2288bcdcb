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
  UsePipes,
  ValidationPipe,
} from '@nestjs/common';
import { CreateAeDto } from './ae.dto.js';
import { AeRegistryService } from './ae-registry.service.js';

/**
 * Known AEs: `POST/GET/DELETE /api/aes`, `GET/DELETE /api/aes/:aet`. A title is matched after
 * trimming, case-sensitively.
 */
@Controller('api/aes')
@UsePipes(new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }))
export class AeController {
  constructor(private readonly registry: AeRegistryService) {}

  @Post()
  async create(@Body() dto: CreateAeDto): Promise<KnownAe> {
    try {
      return await this.registry.create(dto);
    } catch (e) {
      if (e instanceof AeRegistryError && e.code === AeErrorCode.Duplicate) throw new ConflictException(e.message);
      throw e;
    }
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
