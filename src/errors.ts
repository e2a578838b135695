// Errors the library throws. Each has a stable `code`; the CLI prints the
// message on one line and exits non-zero, never a stack trace.

export class PiasError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** The configuration is invalid; the message names the offending path. */
export class ConfigError extends PiasError {
  constructor(message: string) {
    super("ECONFIG", message);
  }
}

/** A capture file is corrupt, truncated, or uses something unsupported. */
export class CaptureFileError extends PiasError {
  constructor(message: string) {
    super("ECAPTURE", message);
  }
}

/** A control call on the data plane failed (table full, unknown target, ...). */
export class DataPlaneError extends PiasError {
  constructor(message: string) {
    super("EDATAPLANE", message);
  }
}
