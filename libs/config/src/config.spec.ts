import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, restoreMarginMs } from './config.js';

describe('loadConfig', () => {
  it('gives embedded defaults with no configuration', () => {
    const c = loadConfig({});
    expect(c.aeTitle).toBe('VNA');
    expect(c.dimsePort).toBe(11112);
    expect(c.httpPort).toBe(8080);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect([...c.roles].sort()).toEqual(['indexer', 'ingest', 'retrieval', 'tiering']);
    expect(c.hotStorage.kind).toBe('fs');
  });

  it('names every bad variable', () => {
    try {
      loadConfig({ VNA_DIMSE_PORT: 'abc', VNA_AE_TITLE: 'A_TITLE_THAT_IS_TOO_LONG', DATABASE_URL: 'mysql://x' });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      const msg = (e as Error).message;
      expect(msg).toContain('VNA_DIMSE_PORT');
      expect(msg).toContain('VNA_AE_TITLE');
      expect(msg).toContain('DATABASE_URL');
    }
  });

  it('takes an admin token of 16-256 printable characters, and names a bad one', () => {
    expect(loadConfig({}).adminToken).toBeUndefined();
    expect(loadConfig({ VNA_ADMIN_TOKEN: 'a'.repeat(16) }).adminToken).toBe('a'.repeat(16));
    for (const bad of ['short', 'has a space in it!!', 'x'.repeat(257)]) {
      expect(() => loadConfig({ VNA_ADMIN_TOKEN: bad })).toThrow(/VNA_ADMIN_TOKEN must be 16-256 printable ASCII characters/);
    }
  });

  it('takes a DICOMweb token like the admin token, and names a bad one', () => {
    expect(loadConfig({}).dicomwebToken).toBeUndefined();
    expect(loadConfig({ VNA_DICOMWEB_TOKEN: 'w'.repeat(16) }).dicomwebToken).toBe('w'.repeat(16));
    expect(() => loadConfig({ VNA_DICOMWEB_TOKEN: 'short' })).toThrow(/VNA_DICOMWEB_TOKEN must be 16-256 printable ASCII characters/);
  });

  it('spaces C-MOVE/C-GET pending responses 100 ms apart by default; 0 sends one after each sub-operation', () => {
    expect(loadConfig({}).pendingIntervalMs).toBe(100);
    expect(loadConfig({ VNA_DIMSE_PENDING_INTERVAL_MS: '0' }).pendingIntervalMs).toBe(0);
    for (const bad of ['-1', '60001', 'soon']) {
      expect(() => loadConfig({ VNA_DIMSE_PENDING_INTERVAL_MS: bad })).toThrow(/VNA_DIMSE_PENDING_INTERVAL_MS/);
    }
  });

  it('requires S3 settings when the hot tier is on S3', () => {
    expect(() => loadConfig({ VNA_HOT_STORAGE: 's3' })).toThrow(/S3_ENDPOINT is required/);
    const c = loadConfig({
      VNA_HOT_STORAGE: 's3', S3_ENDPOINT: 'http://127.0.0.1:9000', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b', S3_BUCKET: 'vna',
    });
    expect(c.hotStorage).toMatchObject({ kind: 's3', s3: { endPoint: '127.0.0.1', port: 9000, useSSL: false, bucket: 'vna' } });
  });

  it('parses roles', () => {
    expect([...loadConfig({ VNA_ROLES: 'ingest,indexer' }).roles]).toEqual(['ingest', 'indexer']);
    expect(() => loadConfig({ VNA_ROLES: 'bogus' })).toThrow(/VNA_ROLES/);
  });

  it('parses VNA_AES and VNA_REQUIRE_KNOWN_AES', () => {
    const c = loadConfig({ VNA_AES: ' BENCHSCU@127.0.0.1:11113, PACS 1@pacs.example.org:104,V6@[::1]:4242', VNA_REQUIRE_KNOWN_AES: 'true' });
    expect(c.knownAes).toEqual([
      { aeTitle: 'BENCHSCU', host: '127.0.0.1', port: 11113 },
      { aeTitle: 'PACS 1', host: 'pacs.example.org', port: 104 },
      { aeTitle: 'V6', host: '::1', port: 4242 },
    ]);
    expect(c.requireKnownAes).toBe(true);
    const d = loadConfig({});
    expect(d.knownAes).toEqual([]);
    expect(d.requireKnownAes).toBe(false);
  });

  it('names each bad VNA_AES entry', () => {
    const bad = (v: string) => () => loadConfig({ VNA_AES: v });
    expect(bad('PACS1')).toThrow(/VNA_AES: "PACS1" is not AETITLE@host:port/);
    expect(bad('PACS1@host')).toThrow(/is not AETITLE@host:port/);
    expect(bad('A_TITLE_THAT_IS_TOO_LONG@h:104')).toThrow(/AE title must be 1-16/);
    expect(bad('BACK\\SLASH@h:104')).toThrow(/AE title/);
    expect(bad('P@h:0')).toThrow(/port must be 1-65535/);
    expect(bad('P@h:70000')).toThrow(/port must be 1-65535/);
    expect(bad('P@bad host!:104')).toThrow(/not AETITLE@host:port|not a host/);
    expect(bad('P@a:1,P@b:2')).toThrow(/listed twice/);
    expect(() => loadConfig({ VNA_REQUIRE_KNOWN_AES: 'maybe' })).toThrow(/VNA_REQUIRE_KNOWN_AES/);
  });

  it('validates the restore settings and derives the read/sweep margin from the keep time', () => {
    expect(loadConfig({}).restore).toEqual({ waitMs: 30_000, keepMs: 86_400_000, marginMs: 600_000 });
    expect(loadConfig({ VNA_RESTORE_WAIT_S: '0', VNA_RESTORE_KEEP_S: '8' }).restore).toEqual({ waitMs: 0, keepMs: 8000, marginMs: 1000 });
    expect(() => loadConfig({ VNA_RESTORE_WAIT_S: '-1' })).toThrow(/VNA_RESTORE_WAIT_S/);
    expect(() => loadConfig({ VNA_RESTORE_WAIT_S: 'soon' })).toThrow(/VNA_RESTORE_WAIT_S/);
    expect(() => loadConfig({ VNA_RESTORE_KEEP_S: '4' })).toThrow(/VNA_RESTORE_KEEP_S/);
    expect(restoreMarginMs(60_000)).toBe(6000);
    expect(restoreMarginMs(1000)).toBe(1000);
    expect(restoreMarginMs(10 * 86_400_000)).toBe(600_000);
  });

  it('validates the priors prefetch settings (off by default)', () => {
    expect(loadConfig({}).priorsPrefetch).toEqual({ enabled: false, count: 2, sameModality: false });
    expect(loadConfig({ VNA_PRIORS_PREFETCH: 'on', VNA_PRIORS_COUNT: '3', VNA_PRIORS_SAME_MODALITY: 'true' }).priorsPrefetch).toEqual({
      enabled: true,
      count: 3,
      sameModality: true,
    });
    expect(loadConfig({ VNA_PRIORS_PREFETCH: 'off' }).priorsPrefetch.enabled).toBe(false);
    const bad = (() => {
      try {
        loadConfig({ VNA_PRIORS_PREFETCH: 'sometimes', VNA_PRIORS_COUNT: '0', VNA_PRIORS_SAME_MODALITY: 'maybe' });
      } catch (e) {
        return (e as Error).message;
      }
      return '';
    })();
    expect(bad).toContain('VNA_PRIORS_PREFETCH must be on or off');
    expect(bad).toContain('VNA_PRIORS_COUNT');
    expect(bad).toContain('VNA_PRIORS_SAME_MODALITY must be true or false');
  });
});

describe('capacity watermarks and promotion on access (VNA_TIERS)', () => {
  const tiers = (hot: Record<string, unknown>, warm: Record<string, unknown> = {}) =>
    JSON.stringify([
      { id: 'hot', kind: 'fs', path: 'hot', availability: 'online', ...hot },
      { id: 'warm', kind: 'fs', path: 'warm', availability: 'nearline', ...warm },
      { id: 'cold', kind: 'fs', path: 'cold', availability: 'offline' },
    ]);
  const problems = (env: Record<string, string>): string => {
    try {
      loadConfig(env);
    } catch (e) {
      expect(e).toBeInstanceOf(ConfigError);
      return (e as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('parses watermarks on hot and promoteOnAccess on warm; defaults of the check interval and the keep time', () => {
    const c = loadConfig({ VNA_TIERS: tiers({ capacityBytes: 5_000_000, highWatermark: 80, lowWatermark: 60.5 }, { promoteOnAccess: true }) });
    expect(c.tiers[0]!.capacity).toEqual({ capacityBytes: 5_000_000, highWatermark: 80, lowWatermark: 60.5 });
    expect(c.tiers[1]!.promoteOnAccess).toBe(true);
    expect(c.tiers[2]!.capacity).toBeUndefined();
    expect(c.capacityIntervalMs).toBe(60_000);
    expect(c.promoteKeepMs).toBe(7 * 86_400_000);
    // A filesystem hot tier may leave capacityBytes out: its filesystem's size is used.
    expect(loadConfig({ VNA_TIERS: tiers({ highWatermark: 90, lowWatermark: 70 }) }).tiers[0]!.capacity).toEqual({ highWatermark: 90, lowWatermark: 70 });
    expect(loadConfig({ VNA_CAPACITY_INTERVAL_S: '0', VNA_PROMOTE_KEEP_S: '60' })).toMatchObject({ capacityIntervalMs: 0, promoteKeepMs: 60_000 });
  });

  it('refuses invalid watermarks at boot, naming the variable, the entry and the field', () => {
    expect(problems({ VNA_TIERS: tiers({ highWatermark: 60, lowWatermark: 80 }) })).toContain(
      'VNA_TIERS[0].lowWatermark (80) must be less than VNA_TIERS[0].highWatermark (60)',
    );
    expect(problems({ VNA_TIERS: tiers({ highWatermark: 70, lowWatermark: 70 }) })).toContain('VNA_TIERS[0].lowWatermark (70) must be less than');
    expect(problems({ VNA_TIERS: tiers({ highWatermark: 120, lowWatermark: 50 }) })).toMatch(/VNA_TIERS\[0\]\.highWatermark: .*100/);
    expect(problems({ VNA_TIERS: tiers({ highWatermark: 80, lowWatermark: -1 }) })).toMatch(/VNA_TIERS\[0\]\.lowWatermark: .*0/);
    expect(problems({ VNA_TIERS: tiers({ highWatermark: '80', lowWatermark: 50 }) })).toContain('VNA_TIERS[0].highWatermark: must be a percentage (0-100)');
    expect(problems({ VNA_TIERS: tiers({ highWatermark: 80 }) })).toContain('VNA_TIERS[0].lowWatermark is required');
    expect(problems({ VNA_TIERS: tiers({ capacityBytes: 1000 }) })).toContain('VNA_TIERS[0].highWatermark is required');
    expect(problems({ VNA_TIERS: tiers({ capacityBytes: 1.5, highWatermark: 80, lowWatermark: 50 }) })).toContain(
      'VNA_TIERS[0].capacityBytes: must be a whole number of bytes',
    );
    expect(problems({ VNA_TIERS: tiers({}, { highWatermark: 80, lowWatermark: 50 }) })).toContain(
      'VNA_TIERS[1].highWatermark: capacity watermarks apply to the "hot" tier only',
    );
    expect(
      problems({
        VNA_TIERS: JSON.stringify([
          { id: 'hot', kind: 's3', endpoint: 'http://s3:9000', bucket: 'vna', accessKey: 'a', secretKey: 'b', availability: 'online', highWatermark: 80, lowWatermark: 50 },
        ]),
      }),
    ).toContain('VNA_TIERS[0].capacityBytes is required for watermarks on an s3 tier');
  });

  it('refuses promoteOnAccess on hot and on offline tiers', () => {
    expect(problems({ VNA_TIERS: tiers({ promoteOnAccess: true }) })).toContain('VNA_TIERS[0].promoteOnAccess');
    expect(
      problems({
        VNA_TIERS: JSON.stringify([
          { id: 'hot', kind: 'fs', path: 'hot', availability: 'online' },
          { id: 'cold', kind: 'fs', path: 'cold', availability: 'offline', promoteOnAccess: true },
        ]),
      }),
    ).toContain('VNA_TIERS[1].promoteOnAccess: an offline tier is restored from');
    expect(problems({ VNA_TIERS: tiers({}, { promoteOnAccess: 'yes' }) })).toContain('VNA_TIERS[1].promoteOnAccess: must be true or false');
    expect(problems({ VNA_CAPACITY_INTERVAL_S: 'often' })).toContain('VNA_CAPACITY_INTERVAL_S');
  });
});
