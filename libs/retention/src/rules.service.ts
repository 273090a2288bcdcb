import { Injectable, Logger } from '@nestjs/common';
import type { RuleDto } from './dto.js';
import type { RuleDefinition } from './expiry.js';
import { ExpiryService } from './expiry.service.js';
import { RetentionError, RetentionErrorCode } from './http.js';
import { RulesRepository, type StoredRule } from './rules.repository.js';

function definitionOf(dto: RuleDto): RuleDefinition {
  const c = dto.criteria ?? {};
  // Keep only the criteria given, as plain values (the stored definition is the rule's version).
  const criteria = Object.fromEntries(Object.entries(c).filter(([, v]) => v !== undefined));
  return {
    criteria,
    periods: dto.periods.map((p) => ({ anchor: p.anchor, years: p.years, ...(p.months ? { months: p.months } : {}), ...(p.days ? { days: p.days } : {}) })),
    action: dto.action,
    autoPurge: dto.autoPurge ?? false,
  };
}

/** Rule changes: versioned and audited (repository), then every expiry is recomputed in the background. */
@Injectable()
export class RulesService {
  private readonly logger = new Logger('RetentionRules');

  constructor(
    private readonly rules: RulesRepository,
    private readonly expiry: ExpiryService,
  ) {}

  list(includeDeleted: boolean): Promise<StoredRule[]> {
    return this.rules.list(includeDeleted);
  }

  async get(id: string) {
    const rule = await this.rules.get(id);
    if (!rule) throw new RetentionError(RetentionErrorCode.NotFound, `retention rule ${id} does not exist`);
    return rule;
  }

  async create(dto: RuleDto, actor: string): Promise<StoredRule> {
    const rule = await this.rules.create(dto.name, definitionOf(dto), actor);
    this.logger.log(`rule ${rule.id} v${rule.version} "${rule.name}" created by ${actor}`);
    await this.expiry.requestEvaluation();
    return rule;
  }

  async update(id: string, dto: RuleDto, actor: string): Promise<StoredRule> {
    const rule = await this.rules.update(id, dto.name, definitionOf(dto), actor);
    this.logger.log(`rule ${rule.id} v${rule.version} "${rule.name}" updated by ${actor}`);
    await this.expiry.requestEvaluation();
    return rule;
  }

  async delete(id: string, actor: string): Promise<StoredRule> {
    const rule = await this.rules.delete(id, actor);
    this.logger.log(`rule ${rule.id} deleted by ${actor} (v${rule.version})`);
    await this.expiry.requestEvaluation();
    return rule;
  }
}
