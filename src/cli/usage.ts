// Usage errors: the CLI prints the message and the usage text, and exits 2.

/** The code of a UsageError. main.ts matches the code, not the class: a command outside the CLI bundle has its own copy of the class. */
export const USAGE_ERROR = "EUSAGE";

export class UsageError extends Error {
  readonly code = USAGE_ERROR;
}
