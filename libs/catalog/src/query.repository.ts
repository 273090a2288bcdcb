import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import {
  ATTRIBUTE_BY_TAG,
  ATTRIBUTES,
  type AttributeDef,
  type Filter,
  LEVEL_DEPTH,
  QueryLevel,
  type QuerySpec,
} from './query-model.js';

export type DicomJsonElement = { vr: string; Value?: unknown[] };
export type DicomJsonDataset = Record<string, DicomJsonElement>;

export class QueryError extends Error {
  constructor(
    message: string,
    readonly tag?: string,
  ) {
    super(message);
    this.name = 'QueryError';
  }
}

const FROM: Record<QueryLevel, string> = {
  [QueryLevel.Patient]: 'patient p',
  [QueryLevel.Study]: 'study s JOIN patient p ON p.id = s.patient_fk',
  [QueryLevel.Series]: 'series se JOIN study s ON s.id = se.study_fk JOIN patient p ON p.id = s.patient_fk',
  [QueryLevel.Image]:
    'instance i JOIN series se ON se.id = i.series_fk JOIN study s ON s.id = se.study_fk JOIN patient p ON p.id = s.patient_fk',
};
const ORDER: Record<QueryLevel, string> = {
  [QueryLevel.Patient]: 'p.id',
  [QueryLevel.Study]: 's.id',
  [QueryLevel.Series]: 'se.id',
  [QueryLevel.Image]: 'i.id',
};
/** The jsonb column holding each level's non-indexed attributes. */
const ATTRS_COLUMN: Record<QueryLevel, string> = {
  [QueryLevel.Patient]: 'p.attrs',
  [QueryLevel.Study]: 's.attrs',
  [QueryLevel.Series]: 'se.attrs',
  [QueryLevel.Image]: 'i.metadata',
};
/** Studies being purged (retention_state PURGING) and patients with no other study are not shown. */
const VISIBLE: Record<QueryLevel, string> = {
  [QueryLevel.Patient]: `EXISTS (SELECT 1 FROM study vs WHERE vs.patient_fk = p.id AND vs.retention_state = 'ACTIVE')`,
  [QueryLevel.Study]: `s.retention_state = 'ACTIVE'`,
  [QueryLevel.Series]: `s.retention_state = 'ACTIVE'`,
  [QueryLevel.Image]: `s.retention_state = 'ACTIVE'`,
};
const LEVELS = [QueryLevel.Patient, QueryLevel.Study, QueryLevel.Series, QueryLevel.Image];

/** Escape LIKE metacharacters, then map DICOM wildcards * and ? to % and _. */
export function wildcardToLike(value: string): string {
  return value.replace(/[\\%_]/g, (c) => `\\${c}`).replace(/\*/g, '%').replace(/\?/g, '_');
}

/** PN values are compared upper-cased, with trailing empty components dropped ("DOE^JOHN^^" = "DOE^JOHN"). */
export function normalizePn(value: string): string {
  return value.toUpperCase().replace(/[\^=]+$/g, '');
}

/** Runs QIDO-RS / C-FIND queries against the index. Never touches object storage. */
@Injectable()
export class QueryRepository {
  constructor(@InjectDataSource() private readonly db: DataSource) {}

  async search(spec: QuerySpec): Promise<DicomJsonDataset[]> {
    const depth = LEVEL_DEPTH[spec.level];
    const params: unknown[] = [];
    // Only ACTIVE studies are visible: a study being purged (retention) is hidden from its first step.
    const where: string[] = [VISIBLE[spec.level]];
    for (const f of spec.filters) where.push(this.condition(f, spec.level, params));

    // Columns of this level and the levels above it; attrs jsonb when needed.
    const visible = ATTRIBUTES.filter((a) => LEVEL_DEPTH[a.level] <= depth);
    const select = visible.map((a, n) => `${a.column} AS c${n}`);
    const wantedExtra = spec.returnTags.filter((t) => !ATTRIBUTE_BY_TAG.has(t));
    const attrLevels = LEVELS.filter((l) => LEVEL_DEPTH[l] <= depth);
    const needAttrs = spec.includeAll || wantedExtra.length > 0;
    if (needAttrs) attrLevels.forEach((l, n) => select.push(`${ATTRS_COLUMN[l]} AS a${n}`));

    let sql = `SELECT ${select.join(', ')} FROM ${FROM[spec.level]}`;
    sql += ` WHERE ${where.join(' AND ')}`;
    sql += ` ORDER BY ${ORDER[spec.level]}`;
    if (spec.limit !== undefined) {
      params.push(spec.limit);
      sql += ` LIMIT $${params.length}`;
    }
    if (spec.offset) {
      params.push(spec.offset);
      sql += ` OFFSET $${params.length}`;
    }
    const rows: Array<Record<string, unknown>> = await this.db.query(sql, params);

    return rows.map((row) => {
      const out: DicomJsonDataset = {};
      if (needAttrs) {
        attrLevels.forEach((_l, n) => {
          const attrs = (row[`a${n}`] ?? {}) as DicomJsonDataset;
          if (spec.includeAll) Object.assign(out, attrs);
          else for (const t of wantedExtra) if (attrs[t]) out[t] = attrs[t];
        });
      }
      visible.forEach((a, n) => {
        out[a.tag] = toElement(a, row[`c${n}`]);
      });
      return out;
    });
  }

  private condition(f: Filter, level: QueryLevel, params: unknown[]): string {
    const def = ATTRIBUTE_BY_TAG.get(f.tag);
    if (!def) return this.attrsCondition(f, level, params);
    if (LEVEL_DEPTH[def.level] > LEVEL_DEPTH[level]) {
      throw new QueryError(`attribute ${f.tag} is below the ${level} query level`, f.tag);
    }
    const add = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    switch (def.match) {
      case 'cs-array': {
        const values = f.kind === 'list' ? f.values : f.kind === 'single' ? [f.value] : null;
        if (!values) throw new QueryError(`attribute ${f.tag} supports only single values or lists`, f.tag);
        return `${def.column} && ${add(values)}::text[]`;
      }
      case 'int':
      case 'count': {
        const values = f.kind === 'list' ? f.values : f.kind === 'single' ? [f.value] : null;
        if (!values || values.some((v) => !/^[+-]?\d+$/.test(v.trim()))) {
          throw new QueryError(`attribute ${f.tag} must be matched with integer values`, f.tag);
        }
        return `${def.column} = ANY(${add(values.map((v) => Number.parseInt(v, 10)))}::int[])`;
      }
      case 'pn': {
        const col = def.normColumn ?? `upper(${def.column})`;
        if (f.kind === 'single') return `${col} = ${add(normalizePn(f.value))}`;
        if (f.kind === 'wildcard') return `${col} LIKE ${add(wildcardToLike(f.value.toUpperCase()))}`;
        if (f.kind === 'list') return `${col} = ANY(${add(f.values.map(normalizePn))}::text[])`;
        throw new QueryError(`range matching is not allowed for ${f.tag}`, f.tag);
      }
      case 'date':
      case 'time': {
        if (f.kind === 'range') {
          const parts: string[] = [`${def.column} <> ''`];
          if (f.from) parts.push(`${def.column} >= ${add(f.from)}`);
          // A time range's upper bound covers the fractions of its last second.
          if (f.to) parts.push(`${def.column} <= ${add(def.match === 'time' ? `${f.to}\uffff` : f.to)}`);
          return `(${parts.join(' AND ')})`;
        }
        break;
      }
      default:
        break;
    }
    if (f.kind === 'single') return `${def.column} = ${add(f.value)}`;
    if (f.kind === 'wildcard') return `${def.column} LIKE ${add(wildcardToLike(f.value))}`;
    if (f.kind === 'list') return `${def.column} = ANY(${add(f.values)}::text[])`;
    throw new QueryError(`range matching is not allowed for ${f.tag}`, f.tag);
  }

  /** Matching on a non-indexed attribute: its first value in the level's stored attributes. */
  private attrsCondition(f: Filter, level: QueryLevel, params: unknown[]): string {
    if (!/^[0-9A-F]{8}$/.test(f.tag)) throw new QueryError(`invalid tag ${f.tag}`, f.tag);
    const attrs = ATTRS_COLUMN[level];
    const expr = `coalesce(${attrs} #>> '{${f.tag},Value,0,Alphabetic}', ${attrs} #>> '{${f.tag},Value,0}')`;
    params.push(f.kind === 'single' ? f.value : f.kind === 'wildcard' ? wildcardToLike(f.value) : null);
    if (f.kind === 'single') return `${expr} = $${params.length}`;
    if (f.kind === 'wildcard') return `${expr} LIKE $${params.length}`;
    throw new QueryError(`only single-value and wildcard matching are supported for ${f.tag}`, f.tag);
  }
}

function toElement(a: AttributeDef, v: unknown): DicomJsonElement {
  if (v === null || v === undefined || v === '') return { vr: a.vr };
  switch (a.match) {
    case 'pn':
      return { vr: a.vr, Value: [{ Alphabetic: String(v) }] };
    case 'int':
    case 'count':
      return { vr: a.vr, Value: [Number(v)] };
    case 'cs-array':
      return (v as string[]).length ? { vr: a.vr, Value: [...(v as string[])].sort() } : { vr: a.vr };
    default:
      return { vr: a.vr, Value: [String(v)] };
  }
}
