// Paths tests share: the repository root and the shared real-world captures
// (../shared/captures beside the clone; see its SOURCES.md). Captures are used
// in place, never copied into the repository.
import { fileURLToPath } from "node:url";
import { dirname, resolve, join } from "node:path";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..");
export const CAPTURES_DIR = resolve(REPO_ROOT, "..", "shared", "captures");
export const capture = (name: string): string => join(CAPTURES_DIR, name);
