import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** Where a registered AE came from: the REST API or the VNA_AES configuration (re-applied at boot). */
export enum AeSource {
  Api = 'api',
  Config = 'config',
}

/**
 * A known DICOM peer (dcm4chee's "AE"): its network address and what it may do with us.
 * `allowStore`/`allowFind`/`allowRetrieve` are enforced when VNA_REQUIRE_KNOWN_AES=true;
 * `allowMoveDestination` always (a C-MOVE can only send to a registered, allowed destination).
 */
@Entity({ name: 'application_entity' })
export class ApplicationEntityEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ name: 'ae_title', type: 'text', unique: true }) aeTitle: string;
  @Column({ type: 'text' }) host: string;
  @Column({ type: 'integer' }) port: number;
  @Column({ type: 'text', default: '' }) description: string;
  /** May send C-STORE to the archive. */
  @Column({ name: 'allow_store', type: 'boolean', default: true }) allowStore: boolean;
  /** May query (C-FIND). */
  @Column({ name: 'allow_find', type: 'boolean', default: true }) allowFind: boolean;
  /** May retrieve (issue C-MOVE or C-GET). */
  @Column({ name: 'allow_retrieve', type: 'boolean', default: true }) allowRetrieve: boolean;
  /** May be named as a C-MOVE destination (the archive opens a store association to host:port). */
  @Column({ name: 'allow_move_destination', type: 'boolean', default: true }) allowMoveDestination: boolean;
  @Column({ type: 'text', default: AeSource.Api }) source: AeSource;
  @Column({ name: 'created_at', type: 'timestamptz', default: () => 'now()' }) createdAt: Date;
  @Column({ name: 'updated_at', type: 'timestamptz', default: () => 'now()' }) updatedAt: Date;
}
