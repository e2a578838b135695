// Injected into the CommonJS bundle of the CLI (package.json, build:cli) as
// import.meta.url: the bundle's own file. Modules that find files from their
// own location (the core's .wasm, the addons, the package root) climb from
// dist/src/cli and find them as they do from their own files.

import { pathToFileURL } from "node:url";

export const importMetaUrl = pathToFileURL(__filename).href;
