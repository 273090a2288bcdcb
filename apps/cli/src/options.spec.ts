import { describe, expect, it } from 'vitest';
import { duration, progressLine } from './format.js';
import { collect, createBody, parseDate, parseDimse, parseRate, parseWindow, throttleBody } from './options.js';
import type { Migration } from './api.js';

describe('option parsing', () => {
  it('AE@host:port, also with an IPv6 host in brackets', () => {
    expect(parseDimse('PACS@10.0.0.5:104')).toEqual({ aeTitle: 'PACS', host: '10.0.0.5', port: 104 });
    expect(parseDimse('OLD_PACS@[::1]:11112')).toEqual({ aeTitle: 'OLD_PACS', host: '::1', port: 11112 });
    expect(() => parseDimse('PACS@host')).toThrow(/AE@host:port/);
    expect(() => parseDimse('PACS@host:70000')).toThrow(/1-65535/);
  });

  it('windows, dates, rates', () => {
    expect(parseWindow('20:00-06:00')).toEqual({ start: '20:00', end: '06:00' });
    expect(() => parseWindow('20-6')).toThrow(/HH:MM-HH:MM/);
    expect(parseDate('2024-01-31')).toBe('20240131');
    expect(parseDate('20240131')).toBe('20240131');
    expect(() => parseDate('31.01.2024')).toThrow(/YYYY-MM-DD/);
    expect(parseRate('none')).toBeNull();
    expect(parseRate('12.5')).toBe(12.5);
    expect(() => parseRate('fast')).toThrow(/instances per second/);
  });

  it('builds the POST body: source, scope, order, throttle', () => {
    const modality = collect(String);
    expect(createBody({
      dimse: parseDimse('LEGACY@127.0.0.1:4242'), retrieve: 'get', from: '20240101', to: '20241231', modality: modality('ct', modality('MR', undefined)),
      patientId: ['P1'], order: 'oldest-first', maxAssociations: 3, rate: 50, window: [parseWindow('20:00-06:00')], tz: 'Europe/Berlin',
    })).toEqual({
      name: 'migration from LEGACY@127.0.0.1:4242',
      source: { kind: 'dimse', aeTitle: 'LEGACY', host: '127.0.0.1', port: 4242, retrieve: 'get' },
      scope: { studyDateFrom: '20240101', studyDateTo: '20241231', modalities: ['MR', 'CT'], patientIds: ['P1'] },
      order: 'oldest-first',
      throttle: { maxAssociations: 3, maxInstancesPerSecond: 50, windows: [{ start: '20:00', end: '06:00' }], timeZone: 'Europe/Berlin' },
    });
    expect(createBody({ name: 'f', folder: '/data/old' })).toEqual({ name: 'f', source: { kind: 'folder', path: '/data/old' } });
    expect(createBody({ name: 'w', dicomweb: 'http://pacs/dicom-web', header: [['Authorization', 'Bearer x']] }).source)
      .toEqual({ kind: 'dicomweb', baseUrl: 'http://pacs/dicom-web', headers: { Authorization: 'Bearer x' } });
    expect((createBody({ dimse: parseDimse('A@h:1') }).source as { retrieve: string }).retrieve).toBe('move');
  });

  it('exactly one source', () => {
    expect(() => createBody({})).toThrow(/give a source/);
    expect(() => createBody({ folder: '/x', dicomweb: 'http://y' })).toThrow(/--folder and --dicomweb/);
    expect(() => createBody({ folder: '/x', retrieve: 'get' })).toThrow(/--retrieve/);
  });

  it('throttle: only what is given; "none" clears the rate, --always the windows', () => {
    expect(throttleBody({ rate: null })).toEqual({ maxInstancesPerSecond: null });
    expect(throttleBody({ always: true, maxAssociations: 1 })).toEqual({ windows: [], maxAssociations: 1 });
    expect(throttleBody({})).toEqual({});
  });
});

describe('formatting', () => {
  it('durations', () => {
    expect(duration(0)).toBe('0s');
    expect(duration(75)).toBe('1m15s');
    expect(duration(3725)).toBe('1h02m05s');
    expect(duration(null)).toBe('?');
  });

  it('the progress line shows the API figures', () => {
    const m = {
      id: '7', state: 'RUNNING',
      figures: {
        studies: { expected: 20, pending: 10, inProgress: 2, done: 7, skipped: 1, failed: 0 },
        instances: { expected: 2116, migrated: 700, skipped: 100, failed: 0, inProgress: 40, remaining: 1276 },
        bytes: 350_000_000, instancesPerSecond: 80, bytesPerSecond: 40e6, elapsedSeconds: 12,
        recent: { windowSeconds: 60, instancesPerSecond: 85.25, bytesPerSecond: 42.5e6 }, etaSeconds: 15,
      },
    } as unknown as Migration;
    expect(progressLine(m)).toBe(
      'migration 7 RUNNING: studies 8/20 (done 7, skipped 1, failed 0, in progress 2), instances 840/2116, 85.3 inst/s 42.5 MB/s (last 60s), ETA 15s, elapsed 12s',
    );
  });
});
