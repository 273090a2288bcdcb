import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

const problemsOf = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return (e as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('VNA_TIERS', () => {
  it('defaults to hot, warm and cold filesystem tiers under VNA_DATA_DIR, hot at its old path', () => {
    const c = loadConfig({ VNA_DATA_DIR: '/data/vna' });
    expect(c.tiers.map((t) => [t.id, t.kind, t.availability])).toEqual([
      ['hot', 'fs', 'online'],
      ['warm', 'fs', 'nearline'],
      ['cold', 'fs', 'offline'],
    ]);
    expect(c.tiers.map((t) => (t.kind === 'fs' ? t.path : ''))).toEqual([
      '/data/vna/storage/hot', '/data/vna/storage/warm', '/data/vna/storage/cold',
    ]);
    expect(c.hotStorage).toEqual({ kind: 'fs', path: '/data/vna/storage/hot' });
    expect(c.tieringConcurrency).toBe(2);
    expect(c.tieringFault).toBeUndefined();
  });

  it('keeps VNA_HOT_STORAGE=s3 as the default hot tier', () => {
    const c = loadConfig({ VNA_HOT_STORAGE: 's3', S3_ENDPOINT: 'http://s3:9000', S3_ACCESS_KEY: 'a', S3_SECRET_KEY: 'b', S3_BUCKET: 'vna' });
    expect(c.tiers[0]).toMatchObject({ id: 'hot', kind: 's3', s3: { endPoint: 's3', port: 9000, bucket: 'vna' } });
    expect(c.tiers.map((t) => t.id)).toEqual(['hot', 'warm', 'cold']);
  });

  it('parses fs and s3 tiers; relative paths are under VNA_DATA_DIR; hot becomes the hot storage', () => {
    const c = loadConfig({
      VNA_DATA_DIR: '/d',
      VNA_TIERS: JSON.stringify([
        { id: 'hot', kind: 'fs', path: 'fast', availability: 'online', pricePerGbMonth: 0.1 },
        { id: 'warm', kind: 's3', endpoint: 'https://s3.example.org', bucket: 'vna-warm', prefix: 'w/', accessKey: 'k', secretKey: 's', availability: 'nearline', pricePerGbMonth: 0.01 },
        { id: 'cold', kind: 'fs', path: '/tape', availability: 'offline' },
      ]),
    });
    expect(c.tiers).toEqual([
      { id: 'hot', kind: 'fs', path: path.resolve('/d', 'fast'), availability: 'online', pricePerGbMonth: 0.1 },
      {
        id: 'warm', kind: 's3', availability: 'nearline', pricePerGbMonth: 0.01,
        s3: { endPoint: 's3.example.org', port: undefined, useSSL: true, accessKey: 'k', secretKey: 's', region: 'us-east-1', bucket: 'vna-warm', prefix: 'w/' },
      },
      { id: 'cold', kind: 'fs', path: '/tape', availability: 'offline', pricePerGbMonth: 0 },
    ]);
    expect(c.hotStorage).toEqual({ kind: 'fs', path: '/d/fast' });
  });

  it('names VNA_TIERS, the entry and the field of every problem', () => {
    expect(problemsOf({ VNA_TIERS: '[{' })).toMatch(/VNA_TIERS is not valid JSON/);
    expect(problemsOf({ VNA_TIERS: '{}' })).toMatch(/VNA_TIERS must be a non-empty JSON array/);
    const m = problemsOf({
      VNA_TIERS: JSON.stringify([
        { id: 'hot', kind: 'fs', path: '/h', availability: 'always' },
        { id: 'Warm Tier', kind: 'fs', path: '/w', availability: 'online' },
        { id: 'cold', kind: 's3', availability: 'offline', bucket: 'x', accessKey: 'a', secretKey: 'b' },
        { id: 'tape', kind: 'tape', availability: 'offline' },
        { id: 'x', kind: 'fs', path: '/x', availability: 'online', pricePerGbMonth: '3' },
        { id: 'y', kind: 'fs', path: '/y', availability: 'online', color: 'red' },
      ]),
    });
    expect(m).toContain('VNA_TIERS[0].availability: must be one of online, nearline, offline');
    expect(m).toContain('VNA_TIERS[1].id:');
    expect(m).toContain('VNA_TIERS[2].endpoint:');
    expect(m).toContain('VNA_TIERS[2].bucket:');
    expect(m).toContain('VNA_TIERS[3].kind:');
    expect(m).toContain('VNA_TIERS[4].pricePerGbMonth:');
    expect(m).toContain('VNA_TIERS[5].color:');
  });

  it('needs one online hot tier, unique ids and paths, and no VNA_HOT_* beside it', () => {
    const t = (tiers: unknown[]) => JSON.stringify(tiers);
    expect(problemsOf({ VNA_TIERS: t([{ id: 'warm', kind: 'fs', path: '/w', availability: 'online' }]) })).toMatch(/VNA_TIERS must define a tier with id "hot"/);
    expect(problemsOf({ VNA_TIERS: t([{ id: 'hot', kind: 'fs', path: '/h', availability: 'offline' }]) })).toMatch(/"hot" tier must be online/);
    expect(problemsOf({ VNA_TIERS: t([{ id: 'hot', kind: 'fs', path: '/h', availability: 'online' }, { id: 'hot', kind: 'fs', path: '/i', availability: 'online' }]) }))
      .toMatch(/VNA_TIERS\[1\]\.id: "hot" is used by another tier/);
    expect(problemsOf({ VNA_TIERS: t([{ id: 'hot', kind: 'fs', path: '/h', availability: 'online' }, { id: 'warm', kind: 'fs', path: '/h', availability: 'online' }]) }))
      .toMatch(/same path/);
    expect(problemsOf({ VNA_HOT_PATH: '/h', VNA_TIERS: t([{ id: 'hot', kind: 'fs', path: '/h', availability: 'online' }]) })).toMatch(/VNA_TIERS and VNA_HOT_STORAGE/);
  });

  it('validates VNA_TIERING_CONCURRENCY and VNA_TIERING_FAULT', () => {
    expect(loadConfig({ VNA_TIERING_CONCURRENCY: '4', VNA_TIERING_FAULT: 'corrupt-after-copy' })).toMatchObject({ tieringConcurrency: 4, tieringFault: 'corrupt-after-copy' });
    expect(problemsOf({ VNA_TIERING_CONCURRENCY: '0' })).toMatch(/VNA_TIERING_CONCURRENCY/);
    expect(problemsOf({ VNA_TIERING_FAULT: 'explode' })).toMatch(/VNA_TIERING_FAULT/);
    expect([...loadConfig({ VNA_ROLES: 'tiering' }).roles]).toEqual(['tiering']);
  });

  it('takes an S3 storage class; GLACIER and DEEP_ARCHIVE tiers are offline and carry their restore options', () => {
    const s3 = { kind: 's3', endpoint: 'https://s3.example.org', bucket: 'vna-arch', accessKey: 'k', secretKey: 's' };
    const c = loadConfig({
      VNA_TIERS: JSON.stringify([
        { id: 'hot', kind: 'fs', path: '/h', availability: 'online' },
        { id: 'ia', ...s3, storageClass: 'STANDARD_IA', availability: 'nearline' },
        { id: 'glacier', ...s3, prefix: 'g/', storageClass: 'GLACIER' },
        { id: 'deep', ...s3, prefix: 'd/', storageClass: 'DEEP_ARCHIVE', availability: 'offline', restoreRetrieval: 'Bulk', restoreDays: 3, restorePollS: 120 },
      ]),
    });
    const [, ia, glacier, deep] = c.tiers;
    expect(ia).toMatchObject({ availability: 'nearline', s3: { storageClass: 'STANDARD_IA' } });
    expect(ia!.kind === 's3' && ia!.s3.archive).toBeUndefined();
    expect(glacier).toMatchObject({
      availability: 'offline',
      s3: { storageClass: 'GLACIER', archive: { retrieval: 'Standard', days: 1, pollMs: 600_000, pollMaxMs: 2_400_000 } },
    });
    expect(deep).toMatchObject({ s3: { storageClass: 'DEEP_ARCHIVE', archive: { retrieval: 'Bulk', days: 3, pollMs: 120_000, pollMaxMs: 480_000 } } });
  });

  it('names the field of every storage class problem', () => {
    const s3 = { kind: 's3', endpoint: 'https://s3.example.org', bucket: 'vna-arch', accessKey: 'k', secretKey: 's' };
    const m = problemsOf({
      VNA_TIERS: JSON.stringify([
        { id: 'hot', kind: 'fs', path: '/h', availability: 'online' },
        { id: 'a', ...s3, storageClass: 'COLD_AS_ICE', availability: 'offline' },
        { id: 'b', ...s3, storageClass: 'GLACIER', availability: 'nearline' },
        { id: 'c', kind: 'fs', path: '/c', storageClass: 'STANDARD', availability: 'online' },
        { id: 'd', ...s3, storageClass: 'STANDARD_IA', availability: 'online', restoreDays: 2 },
        { id: 'e', ...s3, storageClass: 'DEEP_ARCHIVE', restoreRetrieval: 'Expedited' },
        { id: 'f', ...s3, storageClass: 'GLACIER', restoreDays: 0, restoreRetrieval: 'Slow' },
        { id: 'g', ...s3, storageClass: 'GLACIER', restorePollS: 600, restorePollMaxS: 60 },
        { id: 'h', ...s3 },
      ]),
    });
    expect(m).toContain('VNA_TIERS[1].storageClass: must be one of STANDARD,');
    expect(m).toContain('VNA_TIERS[2].availability: must be "offline" for storageClass GLACIER');
    expect(m).toContain('VNA_TIERS[3].storageClass: is only for s3 tiers');
    expect(m).toContain('VNA_TIERS[4].restoreDays: is only for the archive storage classes GLACIER, DEEP_ARCHIVE');
    expect(m).toContain('VNA_TIERS[5].restoreRetrieval: DEEP_ARCHIVE has no Expedited retrieval');
    expect(m).toContain('VNA_TIERS[6].restoreDays:');
    expect(m).toContain('VNA_TIERS[6].restoreRetrieval: must be one of Expedited, Standard, Bulk');
    expect(m).toContain('VNA_TIERS[7].restorePollMaxS: must not be less than restorePollS');
    expect(m).toContain('VNA_TIERS[8].availability: must be one of online, nearline, offline');
  });
});
