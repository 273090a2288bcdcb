import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { archiveObjectState, contentMd5, parseRestoreHeader, restoreRequestXml } from './s3-restore.js';

describe('RestoreObject request body', () => {
  it('is a RestoreRequest with Days and GlacierJobParameters/Tier in the S3 namespace', () => {
    expect(restoreRequestXml({ days: 2, retrieval: 'Bulk' })).toBe(
      '<?xml version="1.0" encoding="UTF-8"?><RestoreRequest xmlns="http://s3.amazonaws.com/doc/2006-03-01/">' +
        '<Days>2</Days><GlacierJobParameters><Tier>Bulk</Tier></GlacierJobParameters></RestoreRequest>',
    );
    expect(restoreRequestXml({ days: 1, retrieval: 'Expedited' })).toContain('<Tier>Expedited</Tier>');
  });

  it('refuses days below 1, fractions and unknown tiers', () => {
    expect(() => restoreRequestXml({ days: 0, retrieval: 'Standard' })).toThrow(/days/);
    expect(() => restoreRequestXml({ days: 1.5, retrieval: 'Standard' })).toThrow(/days/);
    expect(() => restoreRequestXml({ days: 1, retrieval: 'Fast' as 'Standard' })).toThrow(/retrieval tier/);
  });

  it('carries the base64 MD5 of the body', () => {
    const body = restoreRequestXml({ days: 1, retrieval: 'Standard' });
    expect(contentMd5(body)).toBe(createHash('md5').update(body, 'utf8').digest('base64'));
  });
});

describe('x-amz-restore', () => {
  it('parses an ongoing restore and a finished one with its expiry', () => {
    expect(parseRestoreHeader('ongoing-request="true"')).toEqual({ ongoing: true, expiresAt: null });
    expect(parseRestoreHeader('ongoing-request="false", expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"')).toEqual({
      ongoing: false,
      expiresAt: new Date('2012-12-21T00:00:00Z'),
    });
    // Spacing and case as some S3-compatible servers send it.
    expect(parseRestoreHeader('Ongoing-Request = "FALSE" ,expiry-date="Sat, 01 Jan 2033 10:00:00 GMT"')).toEqual({
      ongoing: false,
      expiresAt: new Date('2033-01-01T10:00:00Z'),
    });
  });

  it('is null when absent and an error when malformed', () => {
    expect(parseRestoreHeader(undefined)).toBeNull();
    expect(parseRestoreHeader('')).toBeNull();
    expect(() => parseRestoreHeader('expiry-date="Fri, 21 Dec 2012 00:00:00 GMT"')).toThrow(/ongoing-request/);
    expect(() => parseRestoreHeader('ongoing-request="maybe"')).toThrow(/ongoing-request/);
    expect(() => parseRestoreHeader('ongoing-request="false", expiry-date="someday"')).toThrow(/expiry-date/);
  });
});

describe('archiveObjectState', () => {
  const now = new Date('2026-12-01T10:00:00Z');
  it('reads objects of other classes directly', () => {
    expect(archiveObjectState({}, now)).toEqual({ state: 'readable', expiresAt: null });
    expect(archiveObjectState({ storageClass: 'STANDARD_IA' }, now)).toEqual({ state: 'readable', expiresAt: null });
    expect(archiveObjectState({ storageClass: 'GLACIER_IR' }, now)).toEqual({ state: 'readable', expiresAt: null });
  });

  it('GLACIER / DEEP_ARCHIVE: archived, restoring, restored until the expiry', () => {
    expect(archiveObjectState({ storageClass: 'GLACIER' }, now)).toEqual({ state: 'archived' });
    expect(archiveObjectState({ storageClass: 'DEEP_ARCHIVE', restore: 'ongoing-request="true"' }, now)).toEqual({ state: 'restoring' });
    expect(archiveObjectState({ storageClass: 'GLACIER', restore: 'ongoing-request="false", expiry-date="Wed, 02 Dec 2026 00:00:00 GMT"' }, now)).toEqual({
      state: 'readable',
      expiresAt: new Date('2026-12-02T00:00:00Z'),
    });
    // Expired restored copy: archived again (S3 removes it any moment).
    expect(archiveObjectState({ storageClass: 'GLACIER', restore: 'ongoing-request="false", expiry-date="Mon, 30 Nov 2026 00:00:00 GMT"' }, now)).toEqual({
      state: 'archived',
    });
  });
});
