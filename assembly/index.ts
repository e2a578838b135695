// Entry point of the Wasm data plane: everything exported here is the ABI the
// host (src/core/) uses. See assembly/shared/abi.ts for layouts and codes.
export { alloc_buffer, memory_bytes } from "./memory";
