import 'reflect-metadata';
import { plainToInstance } from 'class-transformer';
import { validateSync, type ValidationError } from 'class-validator';
import { describe, expect, it } from 'vitest';
import { AuditQueryDto, LegalHoldDto, RuleDto } from './dto.js';

/** Property paths of every failed constraint, as the ValidationPipe names them (a.0.b). */
function failures<T extends object>(cls: new () => T, plain: unknown): string[] {
  const walk = (errors: ValidationError[], prefix: string): string[] =>
    errors.flatMap((e) => {
      const p = prefix ? `${prefix}.${e.property}` : e.property;
      return [...(e.constraints ? [p] : []), ...walk(e.children ?? [], p)];
    });
  return walk(validateSync(plainToInstance(cls, plain) as object, { whitelist: true, forbidNonWhitelisted: true }), '');
}

const rule = { name: 'CT', periods: [{ anchor: 'STUDY_DATE', years: 10 }], action: 'delete' };

describe('RuleDto', () => {
  it('accepts a complete rule, the pediatric combination included', () => {
    expect(failures(RuleDto, rule)).toEqual([]);
    expect(failures(RuleDto, {
      name: 'Pediatric', action: 'flag-for-review', autoPurge: true,
      criteria: { modalities: ['CT', 'MR'], sourceAes: ['PACS 1'], institutions: ['General'], sopClassUids: ['1.2.840.10008.5.1.4.1.1.2'],
        studyDescription: 'CT*', minPatientAge: 0, maxPatientAge: 18 },
      periods: [{ anchor: 'PATIENT_BIRTH', years: 21 }, { anchor: 'STUDY_DATE', years: 7, months: 6, days: 1 }],
    })).toEqual([]);
  });

  it('names the failing field, nested ones with their path', () => {
    expect(failures(RuleDto, { ...rule, periods: [] })).toEqual(['periods']);
    expect(failures(RuleDto, { ...rule, periods: [{ anchor: 'STUDY_DATE', years: 1 }, { anchor: 'NOW', years: 1 }] })).toEqual(['periods.1.anchor']);
    expect(failures(RuleDto, { ...rule, periods: [{ anchor: 'STUDY_DATE', years: 1.5 }] })).toEqual(['periods.0.years']);
    expect(failures(RuleDto, { ...rule, periods: [{ anchor: 'STUDY_DATE', years: 0 }] })).toEqual(['periods.0.years']);
    expect(failures(RuleDto, { ...rule, periods: [{ anchor: 'STUDY_DATE', years: 0, months: 3 }] })).toEqual([]);
    expect(failures(RuleDto, { ...rule, action: 'archive' })).toEqual(['action']);
    expect(failures(RuleDto, { ...rule, criteria: { minPatientAge: 18, maxPatientAge: 18 } })).toEqual(['criteria.maxPatientAge']);
    expect(failures(RuleDto, { ...rule, criteria: { sourceAes: ['A\\B'] } })).toEqual(['criteria.sourceAes']);
    expect(failures(RuleDto, { ...rule, criteria: { sopClassUids: ['1.2.x'] } })).toEqual(['criteria.sopClassUids']);
    expect(failures(RuleDto, { ...rule, criteria: { modalities: [] } })).toEqual(['criteria.modalities']);
    expect(failures(RuleDto, { ...rule, criteria: { patientSex: 'F' } })).toEqual(['criteria.patientSex']);
    expect(failures(RuleDto, { ...rule, extra: 1 })).toEqual(['extra']);
  });
});

describe('LegalHoldDto', () => {
  const base = { caseReference: 'LIT-1', reason: 'claim' };
  it('needs exactly one of patientId and studyInstanceUid', () => {
    expect(failures(LegalHoldDto, { ...base, patientId: 'P1' })).toEqual([]);
    expect(failures(LegalHoldDto, { ...base, patientId: 'P1', issuer: 'HOSP' })).toEqual([]);
    expect(failures(LegalHoldDto, { ...base, studyInstanceUid: '1.2.3' })).toEqual([]);
    expect(failures(LegalHoldDto, base)).toEqual(['patientId']);
    expect(failures(LegalHoldDto, { ...base, patientId: 'P1', studyInstanceUid: '1.2.3' })).toEqual(['patientId', 'studyInstanceUid']);
    expect(failures(LegalHoldDto, { ...base, studyInstanceUid: 'x' })).toEqual(['studyInstanceUid']);
    expect(failures(LegalHoldDto, { patientId: 'P1' })).toEqual(['caseReference', 'reason']);
  });
});

describe('AuditQueryDto', () => {
  it('validates filters from the query string', () => {
    expect(failures(AuditQueryDto, { type: 'STUDY_PURGED,LEGAL_HOLD_PLACED', from: '2026-01-01', to: '2026-12-31T23:59:59Z', limit: '10', format: 'csv' })).toEqual([]);
    expect(failures(AuditQueryDto, { from: '01/02/2026' })).toEqual(['from']);
    expect(failures(AuditQueryDto, { limit: '0' })).toEqual(['limit']);
    expect(failures(AuditQueryDto, { format: 'xml' })).toEqual(['format']);
    expect(failures(AuditQueryDto, { type: 'purged' })).toEqual(['type']);
  });
});
