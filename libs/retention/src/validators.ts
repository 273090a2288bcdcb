import { isAeTitle } from '#vna/config';
import { isValidUid } from '#vna/dicom';
import { ValidateBy, type ValidationArguments, type ValidationOptions } from 'class-validator';

/** A DICOM UID, as the archive checks them everywhere (#vna/dicom isValidUid). */
export function IsDicomUid(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isDicomUid',
      validator: {
        validate: (v: unknown) => typeof v === 'string' && isValidUid(v),
        defaultMessage: (a) => `${a?.property} must be a DICOM UID${options?.each ? ' (each value)' : ''}`,
      },
    },
    options,
  );
}

/** An AE title (1-16 characters, no backslash or control characters). */
export function IsAeTitleValue(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isAeTitleValue',
      validator: {
        validate: (v: unknown) => isAeTitle(v),
        defaultMessage: (a) => `${a?.property} must hold AE titles of 1-16 characters without backslash or control characters`,
      },
    },
    options,
  );
}

/** This number must be greater than the sibling property `other` when both are present. */
export function IsGreaterThanSibling(other: string, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isGreaterThanSibling',
      constraints: [other],
      validator: {
        validate: (v: unknown, a?: ValidationArguments) => {
          const o = (a?.object as Record<string, unknown> | undefined)?.[other];
          return typeof v !== 'number' || typeof o !== 'number' || v > o;
        },
        defaultMessage: (a) => `${a?.property} must be greater than ${other}`,
      },
    },
    options,
  );
}

/** Exactly one of this property and the sibling `other` must be present. */
export function IsExclusiveWith(other: string, options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isExclusiveWith',
      constraints: [other],
      validator: {
        validate: (v: unknown, a?: ValidationArguments) => {
          const o = (a?.object as Record<string, unknown> | undefined)?.[other];
          return (v === undefined) !== (o === undefined);
        },
        defaultMessage: (a) => `exactly one of ${a?.property} and ${other} must be given`,
      },
    },
    options,
  );
}

/** A period's years + months + days must be more than zero (a zero period would expire at once). */
export function IsNonZeroPeriod(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isNonZeroPeriod',
      validator: {
        validate: (_v: unknown, a?: ValidationArguments) => {
          const o = (a?.object ?? {}) as { years?: unknown; months?: unknown; days?: unknown };
          const n = (x: unknown) => (typeof x === 'number' ? x : 0);
          return n(o.years) + n(o.months) + n(o.days) > 0;
        },
        defaultMessage: (a) => `${a?.property}: a period of zero years, months and days is not allowed`,
      },
    },
    options,
  );
}
