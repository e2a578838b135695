// The trace load bench/instructions.ts counts under callgrind
// (INSTR_LOADS=trace): a capture and its configuration (INSTR_TRACE,
// INSTR_CONFIG), every packet framed into the data plane's memory first, as
// `npm run bench` times its hot path (bench/lib/frame.ts), then the first
// INSTR_BATCHES of its batches processed. The framing is the same in every
// run, so the difference between two runs is the core's alone.
//
//   INSTR_WASM=FILE  the core's build (default: this checkout's release build)

import { readFileSync } from "node:fs";
import { DataPlane } from "../../src/core/dataplane.js";
import { validateConfig } from "../../src/config/validate.js";
import { frameAll } from "./frame.js";

const trace = process.env.INSTR_TRACE;
const configFile = process.env.INSTR_CONFIG;
if (!trace || !configFile) throw new Error("INSTR_TRACE and INSTR_CONFIG: the capture and its configuration");
const config = validateConfig(JSON.parse(readFileSync(configFile, "utf8")));
const module = process.env.INSTR_WASM ? new WebAssembly.Module(readFileSync(process.env.INSTR_WASM)) : undefined;
const dp = DataPlane.create({ ...config.proxy, capacity: config.capacity, module }, config.groups);
const framed = frameAll(dp, trace);
const batches = Number(process.env.INSTR_BATCHES);
if (!(batches <= framed.desc.length)) throw new Error(`INSTR_BATCHES ${process.env.INSTR_BATCHES}: the trace has ${framed.desc.length} batches`);
for (let i = 0; i < batches; i++) dp.processBatch(framed.desc[i], framed.count[i]);
