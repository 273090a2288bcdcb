/**
 * Test helper: a real S3-compatible server (s3rver 3.7.1) on a random free port, storing its data in
 * a fresh temporary directory that `stop()` removes.
 *
 * s3rver accepts any credentials but does check request signatures, so signing bugs still surface.
 * Known gaps of s3rver that matter to the storage library (see docs in libs/storage):
 * - no ListMultipartUploads (`GET ?uploads`): NotImplemented;
 * - no AbortMultipartUpload (`DELETE ?uploadId`): 405;
 * - no UploadPartCopy, no conditional headers on copy, no checksum validation of bodies.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface S3rverOptions {
  address: string;
  port: number;
  silent: boolean;
  directory: string;
  resetOnClose?: boolean;
  allowMismatchedSignatures?: boolean;
  vhostBuckets?: boolean;
  configureBuckets?: { name: string }[];
}

interface S3rverInstance {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
  httpServer?: Server;
}

type S3rverConstructor = new (options: S3rverOptions) => S3rverInstance;

// s3rver is CommonJS without type declarations: load it through require with a local type.
const require = createRequire(import.meta.url);
const S3rver = require('s3rver') as S3rverConstructor;

export interface S3rverHandle {
  endPoint: string;
  port: number;
  accessKey: string;
  secretKey: string;
  /** Bucket name for the tests (created only with `createBucket: true`). */
  bucket: string;
  /** Directory holding s3rver's data (removed by `stop()`). */
  directory: string;
  stop(): Promise<void>;
}

export interface StartS3rverOptions {
  /** Bucket name to hand out (default "vna-test"). */
  bucket?: string;
  /** Create the bucket before starting (default false: S3Storage.init() creates it). */
  createBucket?: boolean;
}

export async function startS3rver(options: StartS3rverOptions = {}): Promise<S3rverHandle> {
  const bucket = options.bucket ?? 'vna-test';
  const directory = await mkdtemp(join(tmpdir(), 'vna-s3rver-'));
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    resetOnClose: false,
    allowMismatchedSignatures: false,
    vhostBuckets: false,
    configureBuckets: options.createBucket ? [{ name: bucket }] : [],
  });
  let address: { address: string; port: number };
  try {
    address = await server.run();
  } catch (err) {
    await rm(directory, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  return {
    endPoint: '127.0.0.1',
    port: address.port,
    accessKey: 'S3RVER',
    secretKey: 'S3RVER',
    bucket,
    directory,
    async stop() {
      if (stopped) return;
      stopped = true;
      const closing = server.close();
      // Keep-alive sockets of the client would otherwise delay close().
      server.httpServer?.closeAllConnections();
      try {
        await closing;
      } finally {
        await rm(directory, { recursive: true, force: true });
      }
    },
  };
}
