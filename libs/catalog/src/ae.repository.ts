import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import { type DataSource, QueryFailedError } from 'typeorm';
import { AeSource, ApplicationEntityEntity } from './entities/index.js';

/** A known AE as the rest of the archive sees it. */
export interface KnownAe {
  aeTitle: string;
  host: string;
  port: number;
  description: string;
  allowStore: boolean;
  allowFind: boolean;
  allowRetrieve: boolean;
  allowMoveDestination: boolean;
  source: AeSource;
  createdAt: Date;
  updatedAt: Date;
}

export type NewAe = Pick<KnownAe, 'aeTitle' | 'host' | 'port'> &
  Partial<Pick<KnownAe, 'description' | 'allowStore' | 'allowFind' | 'allowRetrieve' | 'allowMoveDestination'>>;

export enum AeErrorCode {
  Duplicate = 'AE_DUPLICATE',
}

export class AeRegistryError extends Error {
  constructor(
    readonly code: AeErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'AeRegistryError';
  }
}

/** The application_entity table (AE titles are stored trimmed; callers trim before looking up). */
@Injectable()
export class AeRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  private get repo() {
    return this.db.getRepository(ApplicationEntityEntity);
  }

  async list(): Promise<KnownAe[]> {
    return (await this.repo.find({ order: { aeTitle: 'ASC' } })).map(toKnownAe);
  }

  async findByTitle(aeTitle: string): Promise<KnownAe | null> {
    const row = await this.repo.findOneBy({ aeTitle });
    return row ? toKnownAe(row) : null;
  }

  /** Insert a new AE; an existing title is an AeRegistryError(Duplicate). */
  async create(ae: NewAe): Promise<KnownAe> {
    try {
      const rows: Array<Record<string, unknown>> = await this.db.query(
        `INSERT INTO application_entity (ae_title, host, port, description, allow_store, allow_find, allow_retrieve, allow_move_destination, source)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
        [ae.aeTitle, ae.host, ae.port, ae.description ?? '', ae.allowStore ?? true, ae.allowFind ?? true,
          ae.allowRetrieve ?? true, ae.allowMoveDestination ?? true, AeSource.Api],
      );
      return fromRow(rows[0]!);
    } catch (e) {
      if (e instanceof QueryFailedError && (e.driverError as { code?: string })?.code === '23505') {
        throw new AeRegistryError(AeErrorCode.Duplicate, `AE title "${ae.aeTitle}" is already registered`);
      }
      throw e;
    }
  }

  /** Delete by title; false when there was none. */
  async delete(aeTitle: string): Promise<boolean> {
    const r = await this.repo.delete({ aeTitle });
    return (r.affected ?? 0) > 0;
  }

  /**
   * Seed from configuration in one statement: new titles are inserted with every permission; an
   * existing title gets the configured host and port (permissions set through the API are kept).
   */
  async upsertFromConfig(aes: Array<{ aeTitle: string; host: string; port: number }>): Promise<void> {
    if (!aes.length) return;
    await this.db.query(
      `INSERT INTO application_entity (ae_title, host, port, source)
       SELECT t, h, p, '${AeSource.Config}' FROM unnest($1::text[], $2::text[], $3::int[]) AS x(t, h, p)
       ON CONFLICT (ae_title) DO UPDATE SET host = EXCLUDED.host, port = EXCLUDED.port, updated_at = now()
        WHERE application_entity.host IS DISTINCT FROM EXCLUDED.host OR application_entity.port IS DISTINCT FROM EXCLUDED.port`,
      [aes.map((a) => a.aeTitle), aes.map((a) => a.host), aes.map((a) => a.port)],
    );
  }
}

function toKnownAe(e: ApplicationEntityEntity): KnownAe {
  return {
    aeTitle: e.aeTitle,
    host: e.host,
    port: e.port,
    description: e.description,
    allowStore: e.allowStore,
    allowFind: e.allowFind,
    allowRetrieve: e.allowRetrieve,
    allowMoveDestination: e.allowMoveDestination,
    source: e.source,
    createdAt: e.createdAt,
    updatedAt: e.updatedAt,
  };
}

function fromRow(r: Record<string, unknown>): KnownAe {
  return {
    aeTitle: String(r.ae_title),
    host: String(r.host),
    port: Number(r.port),
    description: String(r.description),
    allowStore: Boolean(r.allow_store),
    allowFind: Boolean(r.allow_find),
    allowRetrieve: Boolean(r.allow_retrieve),
    allowMoveDestination: Boolean(r.allow_move_destination),
    source: r.source as AeSource,
    createdAt: r.created_at as Date,
    updatedAt: r.updated_at as Date,
  };
}
