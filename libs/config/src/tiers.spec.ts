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
});
