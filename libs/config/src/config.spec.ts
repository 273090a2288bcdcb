import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from './config.js';

describe('loadConfig', () => {
  it('gives embedded defaults with no configuration', () => {
    const c = loadConfig({});
    expect(c.aeTitle).toBe('VNA');
    expect(c.dimsePort).toBe(11112);
    expect(c.httpPort).toBe(8080);
    expect(c.databaseUrl).toBeUndefined();
    expect(c.redisUrl).toBe('redis://127.0.0.1:6379');
    expect([...c.roles].sort()).toEqual(['indexer', 'ingest', 'retrieval']);
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
});
