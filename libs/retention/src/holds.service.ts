import { Injectable, Logger } from '@nestjs/common';
import type { LegalHoldDto } from './dto.js';
import { HoldsRepository, type LegalHold } from './holds.repository.js';
import { RetentionError, RetentionErrorCode } from './http.js';

/** Legal holds: a held study is never purged, whatever its expiry. Placing and releasing are audited. */
@Injectable()
export class HoldsService {
  private readonly logger = new Logger('LegalHolds');

  constructor(private readonly holds: HoldsRepository) {}

  async place(dto: LegalHoldDto, actor: string) {
    const r = await this.holds.place(dto, actor);
    const target = dto.studyInstanceUid ? `study ${dto.studyInstanceUid}` : `patient ${dto.patientId}${dto.issuer !== undefined ? ` (${dto.issuer})` : ''}`;
    this.logger.log(`legal hold ${r.hold.id} on ${target} placed by ${actor} (case ${dto.caseReference}), covering ${r.covers.length} study(ies)`);
    if (r.alreadyPurging.length) this.logger.warn(`legal hold ${r.hold.id}: ${r.alreadyPurging.length} study(ies) were already being purged`);
    return { ...r.hold, covers: r.covers, alreadyPurging: r.alreadyPurging };
  }

  list(f: { active?: boolean; patientId?: string; studyIuid?: string }): Promise<LegalHold[]> {
    return this.holds.list(f);
  }

  async get(id: string): Promise<LegalHold> {
    const h = await this.holds.get(id);
    if (!h) throw new RetentionError(RetentionErrorCode.NotFound, `legal hold ${id} does not exist`);
    return h;
  }

  async release(id: string, actor: string, reason?: string): Promise<LegalHold> {
    const h = await this.holds.release(id, actor, reason);
    this.logger.log(`legal hold ${id} released by ${actor}`);
    return h;
  }
}
