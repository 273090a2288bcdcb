import { Column, Entity, PrimaryGeneratedColumn } from 'typeorm';

/** One saved version of the lifecycle policy (never changed or deleted). */
@Entity({ name: 'lifecycle_policy' })
export class LifecyclePolicyEntity {
  @PrimaryGeneratedColumn({ type: 'bigint' }) id: string;
  @Column({ type: 'integer' }) version: number;
  /** Ordered rules `{ name, match, targetTier }` (see libs/tiering/src/policy/rules.ts). */
  @Column({ type: 'jsonb' }) rules: unknown[];
  @Column({ name: 'settle_minutes', type: 'integer' }) settleMinutes: number;
  @Column({ name: 'created_by', type: 'text' }) createdBy: string;
  @Column({ name: 'created_at', type: 'timestamptz' }) createdAt: Date;
}
