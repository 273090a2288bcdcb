import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type S3rverHandle, startS3rver } from '../../../test/support/s3rver.js';
import type { StorageBackend, StorageConfig } from './contract.js';
import { FsStorage } from './fs-storage.js';
import { createStorage, StorageRegistry, UnknownStorageError } from './registry.js';
import { S3Storage } from './s3-storage.js';

let base: string;
let server: S3rverHandle;

beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'vna-registry-'));
  server = await startS3rver({ bucket: 'registry-test' });
}, 60_000);
afterAll(async () => {
  await server?.stop();
  await rm(base, { recursive: true, force: true });
});

function configs(): StorageConfig[] {
  return [
    { id: 'hot', kind: 'fs', path: join(base, 'hot') },
    {
      id: 'cold',
      kind: 's3',
      endPoint: server.endPoint,
      port: server.port,
      useSSL: false,
      accessKey: server.accessKey,
      secretKey: server.secretKey,
      region: 'us-east-1',
      bucket: server.bucket,
      pathStyle: true,
    },
  ];
}

describe('createStorage', () => {
  it('makes and initialises the backend of each kind', async () => {
    const [fsConfig, s3Config] = configs();
    const hot = await createStorage(fsConfig!);
    expect(hot).toBeInstanceOf(FsStorage);
    expect((await stat(join(base, 'hot', '.tmp'))).isDirectory()).toBe(true);
    const cold = await createStorage(s3Config!);
    expect(cold).toBeInstanceOf(S3Storage);
    await cold.health();
  });

  it('rejects an unknown kind', async () => {
    await expect(createStorage({ id: 'x', kind: 'tape' } as unknown as StorageConfig)).rejects.toThrow(/unknown storage kind/);
  });
});

describe('StorageRegistry', () => {
  it('returns backends by id and names the configured ids for an unknown one', async () => {
    const registry = await StorageRegistry.fromConfigs(configs());
    expect(registry.get('hot').kind).toBe('fs');
    expect(registry.get('cold').kind).toBe('s3');
    expect(registry.has('warm')).toBe(false);
    expect(registry.ids()).toEqual(['hot', 'cold']);
    expect(() => registry.get('warm')).toThrow(UnknownStorageError);
    expect(() => registry.get('warm')).toThrow(/unknown storage id "warm" \(configured: hot, cold\)/);
  });

  it('refuses duplicate ids', async () => {
    const fake = { id: 'hot' } as StorageBackend;
    expect(() => new StorageRegistry([fake, fake])).toThrow(/duplicate storage id/);
    const [fsConfig] = configs();
    await expect(StorageRegistry.fromConfigs([fsConfig!, fsConfig!])).rejects.toThrow(/duplicate storage id/);
  });
});
