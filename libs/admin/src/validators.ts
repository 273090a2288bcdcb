import { isAeTitle, isHost } from '#vna/config';
import { ValidateBy, type ValidationOptions } from 'class-validator';

/** An AE title: 1-16 characters, no backslash, no control characters (after trimming). */
export function IsAeTitle(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isAeTitle',
      validator: {
        validate: (v: unknown) => isAeTitle(v),
        defaultMessage: (a) => `${a?.property} must be 1-16 characters without backslash or control characters`,
      },
    },
    options,
  );
}

/** A host name or an IPv4/IPv6 address. */
export function IsHost(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isHost',
      validator: {
        validate: (v: unknown) => isHost(v),
        defaultMessage: (a) => `${a?.property} must be a host name or an IP address`,
      },
    },
    options,
  );
}
