// Errors the library throws. Each has a stable `code`; the CLI prints the
// message on one line and exits non-zero, never a stack trace.

export class PiasError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(printable(message));
    this.name = new.target.name;
  }
}

/**
 * `s` with every control character (C0, DEL, C1), line separator and bidi
 * override written as a \uXXXX escape: text from a config or a capture
 * (a key, an address, a file name) must not reach a terminal or a log raw.
 */
export function printable(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
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

/** What a data-plane control call ran out of or tripped on; "full": a table or its memory. */
export type DataPlaneFailure = "full" | "exists" | "not-found" | "invalid" | "other";

/** A control call on the data plane failed (table full, unknown target, ...). */
export class DataPlaneError extends PiasError {
  constructor(
    message: string,
    readonly failure: DataPlaneFailure = "other",
  ) {
    super("EDATAPLANE", message);
  }
}
