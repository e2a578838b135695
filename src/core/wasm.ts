// Loads the Wasm data plane module. One compiled module per process; each
// DataPlane (or capture scanner) gets its own instance and linear memory.

import { readFileSync, existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

/** The raw exports of wasm/pias.wasm. Names and signatures mirror assembly/index.ts. */
export interface CoreExports {
  readonly memory: WebAssembly.Memory;
  [name: string]: unknown;
}

/**
 * Builds of the core: release (the product), debug (assertions, names) and
 * bench (release plus the stage stops of assembly/stages.ts, for
 * `npm run bench:scale`).
 */
export type CoreBuild = "release" | "debug" | "bench";

const compiled = new Map<CoreBuild, WebAssembly.Module>();

/** Path of the release module, found from this file whether it runs from src/ (tsx) or dist/src/. */
export function wasmPath(variant: CoreBuild = "release"): string {
  const file = variant === "release" ? "pias.wasm" : `pias.${variant}.wasm`;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, "wasm", file);
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(`pias: ${file} not found; run "npm run build" first`);
}

function module(build?: CoreBuild): WebAssembly.Module {
  const variant = build ?? (process.env.PIAS_WASM === "debug" ? "debug" : "release");
  let m = compiled.get(variant);
  if (!m) {
    m = new WebAssembly.Module(readFileSync(wasmPath(variant)));
    compiled.set(variant, m);
  }
  return m;
}

/** Thrown when the Wasm core aborts (an assertion in a debug build, or out of memory). */
export class CoreAbort extends Error {
  readonly code = "ECOREABORT";
}

/** A fresh instance of the core with its own memory. */
export function instantiate<T extends CoreExports = CoreExports>(build?: CoreBuild): T {
  return instantiateModule<T>(module(build));
}

/** A fresh instance of a compiled core module (another build's, for a benchmark that compares two). */
export function instantiateModule<T extends CoreExports = CoreExports>(m: WebAssembly.Module): T {
  let memory: WebAssembly.Memory | undefined;
  const readString = (ptr: number): string => {
    if (!memory || !ptr) return "";
    const u16 = new Uint16Array(memory.buffer);
    const len = new Uint32Array(memory.buffer)[(ptr - 4) >>> 2] >>> 1;
    return String.fromCharCode(...u16.subarray(ptr >>> 1, (ptr >>> 1) + len));
  };
  const instance = new WebAssembly.Instance(m, {
    env: {
      abort(msg: number, file: number, line: number, col: number): never {
        throw new CoreAbort(`wasm core aborted: ${readString(msg)} at ${readString(file)}:${line}:${col}`);
      },
      seed(): number {
        return Date.now();
      },
    },
  });
  const exports = instance.exports as unknown as T;
  memory = exports.memory;
  return exports;
}
