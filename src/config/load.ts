// Reading a configuration file: JSON when the text starts with "{", YAML
// otherwise. Every error is a ConfigError with a one-line message that starts
// with the file name and, when known, the line: "demo.yaml:3: ...".
//
// Validation errors get a line too: the source is scanned for the path the
// error names (the key of a mapping entry, the start of a list item).
// JSON duplicate keys are rejected like YAML's (JSON.parse would keep the
// last one silently).

import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { Document, Node } from "yaml";
import { ConfigError } from "../errors.js";
import type { PiasConfig } from "./types.js";
import { validateConfig } from "./validate.js";
import { ConfigValidationError, type ConfigPath } from "./values.js";

/** Read, parse and validate a configuration file. Throws ConfigError. */
export function loadConfig(path: string): PiasConfig {
  return loadValidated(path, validateConfig);
}

/** Read and parse a file of configuration syntax and check it with `validate` (a fleet document's, say; `(v) => v` for the parsed value). Throws ConfigError. */
export function loadValidated<T>(path: string, validate: (raw: unknown) => T): T {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ConfigError(`cannot read config ${path}: ${describeFsError(err)}`);
  }
  return parseValidated(text, path, validate);
}

/** Parse and validate configuration text; `nameForErrors` starts every error message. Throws ConfigError. */
export function parseConfigText(text: string, nameForErrors: string): PiasConfig {
  return parseValidated(text, nameForErrors, validateConfig);
}

function parseValidated<T>(text: string, nameForErrors: string, validate: (raw: unknown) => T): T {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === "") throw new ConfigError(`${nameForErrors}: the configuration is empty`);
  const parsed = text.trimStart().startsWith("{") ? parseJson(text, nameForErrors) : parseYaml(text, nameForErrors);
  try {
    return validate(parsed.value);
  } catch (err) {
    if (err instanceof ConfigValidationError) {
      const offset = parsed.locate(err.locate);
      throw err.at({ file: nameForErrors, line: offset === undefined ? undefined : lineOf(text, offset) });
    }
    throw err;
  }
}

// ---------------------------------------------------------------- helpers

interface Parsed {
  readonly value: unknown;
  /** Offset in the text of the value (or key) at the longest existing prefix of `path`. */
  readonly locate: (path: ConfigPath) => number | undefined;
}

/** "ENOENT: no such file or directory" from Node's "ENOENT: no such file or directory, open 'x'". */
function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const message = firstLine(String(e?.message ?? err));
  const m = /^([A-Z0-9]+: .*?), \w+(?: '.*')?$/.exec(message);
  return m ? m[1] : message;
}

function firstLine(s: string): string {
  return s.split(/\r?\n/, 1)[0].trim();
}

/** The message for a parser that ran out of stack on deeply nested input, or undefined for any other error. */
function tooDeep(err: unknown): string | undefined {
  return /Maximum call stack size exceeded/.test(String((err as Error)?.message)) ? "nested too deeply to be a configuration" : undefined;
}

/** 1-based line of a character offset. */
function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

// ---------------------------------------------------------------- YAML

type Yaml = typeof import("yaml");
let yamlModule: Yaml | undefined;

/** The yaml package, loaded on first use: a JSON config never pays its start-up (a third of `pias replay`'s). */
function yaml(): Yaml {
  return (yamlModule ??= createRequire(import.meta.url)("yaml") as Yaml);
}

function parseYaml(text: string, name: string): Parsed {
  const { LineCounter, parseDocument } = yaml();
  const lineCounter = new LineCounter();
  let doc: Document;
  try {
    doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, version: "1.2", logLevel: "error" });
  } catch (err) {
    throw new ConfigError(`${name}: ${tooDeep(err) ?? firstLine((err as Error).message)}`);
  }
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) {
    const { line } = lineCounter.linePos(problem.pos[0]);
    const message = tooDeep(problem) ?? firstLine(problem.message).replace(/ at line \d+, column \d+:?$/, "");
    throw new ConfigError(`${name}:${line}: ${message}`);
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new ConfigError(`${name}: ${tooDeep(err) ?? firstLine((err as Error).message)}`);
  }
  if (value === null && doc.contents === null) throw new ConfigError(`${name}: the configuration is empty`);
  return { value, locate: (path) => locateYaml(doc, path) };
}

function locateYaml(doc: Document, path: ConfigPath): number | undefined {
  const { isMap, isSeq, isScalar, isAlias, isNode } = yaml();
  let node: unknown = doc.contents;
  let offset = isNode(node) ? (node as Node).range?.[0] : undefined;
  for (const seg of path) {
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
      if (!pair) break;
      offset = (isNode(pair.key) ? pair.key.range?.[0] : undefined) ?? offset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number" && seg < node.items.length) {
      node = node.items[seg];
      offset = (isNode(node) ? (node as Node).range?.[0] : undefined) ?? offset;
    } else {
      break;
    }
  }
  return offset;
}

// ---------------------------------------------------------------- JSON

class JsonSyntaxError extends Error {
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
  }
}

/** Nesting a configuration may use at most (a real one needs about 6): deeper input is refused, not recursed into. */
const MAX_DEPTH = 64;

/**
 * A strict JSON (RFC 8259) scanner that records where each path starts and
 * rejects duplicate keys. Values come from JSON.parse; this only finds places.
 */
class JsonScanner {
  private pos = 0;
  readonly places = new Map<string, number>();

  constructor(private readonly text: string) {}

  scan(): void {
    this.ws();
    this.value([]);
    this.ws();
    if (this.pos < this.text.length) this.fail(`unexpected ${this.show()} after the end of the JSON value`);
  }

  private fail(message: string, at = this.pos): never {
    throw new JsonSyntaxError(message, at);
  }

  private show(): string {
    if (this.pos >= this.text.length) return "end of input";
    return JSON.stringify(this.text[this.pos]);
  }

  private ws(): void {
    while (this.pos < this.text.length) {
      const c = this.text[this.pos];
      if (c === " " || c === "\t" || c === "\n" || c === "\r") this.pos++;
      else if (c === "/" && (this.text[this.pos + 1] === "/" || this.text[this.pos + 1] === "*")) this.fail("comments are not allowed in JSON");
      else break;
    }
  }

  private record(path: ConfigPath, offset: number): void {
    this.places.set(JSON.stringify(path), offset);
  }

  private value(path: ConfigPath): void {
    if (path.length === 0) this.record(path, this.pos);
    if (path.length >= MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    const c = this.text[this.pos];
    if (c === "{") return this.object(path);
    if (c === "[") return this.array(path);
    if (c === '"') return void this.string();
    if (c === "-" || (c >= "0" && c <= "9")) return this.number();
    for (const lit of ["true", "false", "null"]) {
      if (this.text.startsWith(lit, this.pos)) {
        this.pos += lit.length;
        return;
      }
    }
    if (c === "'") this.fail("strings must use double quotes in JSON");
    this.fail(`unexpected ${this.show()} where a value was expected`);
  }

  private object(path: ConfigPath): void {
    this.pos++; // {
    this.ws();
    const keys = new Set<string>();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return;
    }
    for (;;) {
      if (this.text[this.pos] !== '"') {
        if (this.text[this.pos] === "}") this.fail("trailing comma before }");
        this.fail(`unexpected ${this.show()} where a double-quoted key was expected`);
      }
      const keyAt = this.pos;
      const key = this.string();
      if (keys.has(key)) this.fail(`duplicate key ${JSON.stringify(key)}`, keyAt);
      keys.add(key);
      const child = [...path, key];
      this.record(child, keyAt);
      this.ws();
      if (this.text[this.pos] !== ":") this.fail(`expected ":" after key ${JSON.stringify(key)}, found ${this.show()}`);
      this.pos++;
      this.ws();
      this.value(child);
      this.ws();
      const c = this.text[this.pos];
      if (c === ",") {
        this.pos++;
        this.ws();
      } else if (c === "}") {
        this.pos++;
        return;
      } else {
        this.fail(`expected "," or "}" after a value, found ${this.show()}`);
      }
    }
  }

  private array(path: ConfigPath): void {
    this.pos++; // [
    this.ws();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return;
    }
    for (let i = 0; ; i++) {
      if (this.text[this.pos] === "]") this.fail("trailing comma before ]");
      this.record([...path, i], this.pos);
      this.value([...path, i]);
      this.ws();
      const c = this.text[this.pos];
      if (c === ",") {
        this.pos++;
        this.ws();
      } else if (c === "]") {
        this.pos++;
        return;
      } else {
        this.fail(`expected "," or "]" after a value, found ${this.show()}`);
      }
    }
  }

  private string(): string {
    const start = this.pos;
    this.pos++; // "
    for (;;) {
      if (this.pos >= this.text.length) this.fail("unterminated string", start);
      const code = this.text.charCodeAt(this.pos);
      if (code === 0x22) break;
      if (code < 0x20) this.fail("unescaped control character (a line break?) in a string");
      if (code === 0x5c) {
        const e = this.text[this.pos + 1];
        if (e === "u") {
          if (!/^[0-9A-Fa-f]{4}$/.test(this.text.slice(this.pos + 2, this.pos + 6))) this.fail("bad \\u escape in a string");
          this.pos += 6;
          continue;
        }
        if (e === undefined || !'"\\/bfnrt'.includes(e)) this.fail(`bad escape \\${e ?? ""} in a string`);
        this.pos += 2;
        continue;
      }
      this.pos++;
    }
    this.pos++; // "
    return JSON.parse(this.text.slice(start, this.pos)) as string;
  }

  private number(): void {
    const re = /-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?/y;
    re.lastIndex = this.pos;
    const m = re.exec(this.text);
    const next = m ? this.text[this.pos + m[0].length] : undefined;
    if (!m || (next !== undefined && /[-+0-9A-Za-z_.]/.test(next))) {
      const token = /[-+0-9A-Za-z_.]*/y;
      token.lastIndex = this.pos;
      this.fail(`bad number ${JSON.stringify(token.exec(this.text)?.[0] ?? "")}`);
    }
    this.pos += m[0].length;
  }
}

function parseJson(text: string, name: string): Parsed {
  let scanner: JsonScanner | undefined;
  /** The scanner's places, scanning once; a problem it finds becomes a ConfigError with the line. */
  const places = (): Map<string, number> => {
    if (!scanner) {
      scanner = new JsonScanner(text);
      try {
        scanner.scan();
      } catch (err) {
        if (!(err instanceof JsonSyntaxError)) throw err;
        throw new ConfigError(`${name}:${lineOf(text, err.offset)}: ${err.message}`);
      }
    }
    return scanner.places;
  };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    // The scanner's words (with a line) when it finds the problem, else JSON.parse's.
    places();
    const m = / at position (\d+)/.exec((err as Error).message);
    const where = m ? `${name}:${lineOf(text, Number(m[1]))}` : name;
    throw new ConfigError(`${where}: ${firstLine((err as Error).message).replace(/ in JSON at position \d+.*$/, "")}`);
  }
  // JSON.parse accepted it, but keeps the last of duplicate keys and nests
  // without limit. The scanner is slow (as slow as validating a few hundred
  // groups), so it runs only when the text nests too deep (checked first:
  // JSON.stringify would overflow the stack), has more keys than the value
  // (a key written twice), or to place a validation error. The counting is
  // done by native string functions, cheap even in a process just started.
  const structure = withoutStrings(text);
  if (nestsDeep(structure, MAX_DEPTH) || keys(structure) !== keys(withoutStrings(JSON.stringify(value)))) places();
  return {
    value,
    locate(path) {
      const at = places();
      for (let n = path.length; n >= 0; n--) {
        const offset = at.get(JSON.stringify(path.slice(0, n)));
        if (offset !== undefined) return offset;
      }
      return undefined;
    },
  };
}

/** A JSON string token (in valid JSON every quote outside a string starts one). */
const JSON_STRING = /"[^"\\]*(?:\\.[^"\\]*)*"/g;

/** Valid JSON text without its strings: what is left says where keys and nesting are. */
function withoutStrings(json: string): string {
  return json.replace(JSON_STRING, "");
}

/** Object keys in valid JSON text without its strings: its colons. */
function keys(structure: string): number {
  return structure.split(":").length - 1;
}

/** Whether the lists and objects of valid JSON text without its strings nest `depth` deep or more. */
function nestsDeep(structure: string, depth: number): boolean {
  // each pass removes the innermost (empty) brackets: `depth` passes empty anything shallower
  let brackets = structure.replace(/[^[\]{}]+/g, "");
  for (let i = 0; i < depth && brackets !== ""; i++) brackets = brackets.replace(/\[\]|\{\}/g, "");
  return brackets !== "";
}
