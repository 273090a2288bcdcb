import { AeRepository, type KnownAe, type NewAe } from '#vna/catalog';
import { type VnaConfig, VNA_CONFIG } from '#vna/config';
import { Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';

/** What a calling AE may do; checked per DIMSE operation when VNA_REQUIRE_KNOWN_AES=true. */
export enum AeOperation {
  Store = 'store',
  Find = 'find',
  Retrieve = 'retrieve',
}

/** How long a process trusts its cached view of an AE (other processes may change the registry). */
const CACHE_TTL_MS = 5_000;

/**
 * The registry of known AEs: CRUD for the admin API, seeding from VNA_AES at boot, and the
 * association/operation checks of the DIMSE listener (cached, so a C-STORE never waits on it
 * more than once per TTL).
 *
 * Policy: by default any calling AE may associate and do anything (promiscuous, the quick
 * start); the registry is then only the directory of C-MOVE destinations. With
 * VNA_REQUIRE_KNOWN_AES=true only registered AEs may associate, and each only for the operations
 * its `allow*` flags grant. VNA_ACCEPTED_CALLING_AETS, when set, applies in both modes.
 */
@Injectable()
export class AeRegistryService implements OnApplicationBootstrap {
  private readonly logger = new Logger('AeRegistry');
  private readonly cache = new Map<string, { ae: KnownAe | null; at: number }>();

  constructor(
    private readonly aes: AeRepository,
    @Inject(VNA_CONFIG) private readonly config: VnaConfig,
  ) {}

  get requireKnown(): boolean {
    return this.config.requireKnownAes;
  }

  async onApplicationBootstrap() {
    if (!this.config.knownAes.length) return;
    await this.aes.upsertFromConfig(this.config.knownAes);
    this.logger.log(`registry seeded from VNA_AES: ${this.config.knownAes.map((a) => `${a.aeTitle}@${a.host}:${a.port}`).join(', ')}`);
  }

  list(): Promise<KnownAe[]> {
    return this.aes.list();
  }

  get(aeTitle: string): Promise<KnownAe | null> {
    return this.aes.findByTitle(aeTitle.trim());
  }

  async create(ae: NewAe): Promise<KnownAe> {
    const created = await this.aes.create(ae);
    this.cache.delete(created.aeTitle);
    this.logger.log(`AE ${created.aeTitle}@${created.host}:${created.port} registered`);
    return created;
  }

  async delete(aeTitle: string): Promise<boolean> {
    const title = aeTitle.trim();
    const deleted = await this.aes.delete(title);
    this.cache.delete(title);
    if (deleted) this.logger.log(`AE ${title} removed`);
    return deleted;
  }

  /** The registered AE (cached for a few seconds), or null. */
  async lookup(aeTitle: string): Promise<KnownAe | null> {
    const title = aeTitle.trim();
    const hit = this.cache.get(title);
    if (hit && Date.now() - hit.at < CACHE_TTL_MS) return hit.ae;
    const ae = await this.aes.findByTitle(title);
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(title, { ae, at: Date.now() });
    return ae;
  }

  /** May this calling AE associate at all? Always true unless VNA_REQUIRE_KNOWN_AES=true. */
  async mayAssociate(callingAeTitle: string): Promise<boolean> {
    if (!this.requireKnown) return true;
    return (await this.lookup(callingAeTitle)) !== null;
  }

  /** May this calling AE perform the operation? Always true unless VNA_REQUIRE_KNOWN_AES=true. */
  async isPermitted(callingAeTitle: string, op: AeOperation): Promise<boolean> {
    if (!this.requireKnown) return true;
    const ae = await this.lookup(callingAeTitle);
    if (!ae) return false;
    switch (op) {
      case AeOperation.Store:
        return ae.allowStore;
      case AeOperation.Find:
        return ae.allowFind;
      case AeOperation.Retrieve:
        return ae.allowRetrieve;
      default: {
        const never: never = op;
        throw new Error(`unknown operation ${String(never)}`);
      }
    }
  }
}
