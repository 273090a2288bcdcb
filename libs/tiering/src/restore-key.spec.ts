import { assertValidKey, objectKeyFor } from '#vna/storage';
import { describe, expect, it } from 'vitest';
import { isRestoreKey, restoreKeyFor } from './restore-key.js';

describe('restoreKeyFor', () => {
  const key = objectKeyFor({ studyUid: '1.2.3', seriesUid: '1.2.3.4', sopInstanceUid: '1.2.3.4.5', version: 'abc' });

  it('puts the UID-derived key under the restore area, as a valid storage key', () => {
    const restored = restoreKeyFor(key);
    expect(restored).toBe(`restored/${key}`);
    expect(() => assertValidKey(restored)).not.toThrow();
    expect(isRestoreKey(restored)).toBe(true);
    expect(isRestoreKey(key)).toBe(false);
  });

  it('refuses empty or absolute keys', () => {
    expect(() => restoreKeyFor('')).toThrow(TypeError);
    expect(() => restoreKeyFor('/etc/passwd')).toThrow(TypeError);
  });
});
