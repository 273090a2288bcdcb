/** STOW-RS request limits, provided by the app from the validated configuration. */
export class StowLimits {
  constructor(readonly maxBytes: number) {}
}
