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
