// Memory for tables and host buffers, handed out at set-up and on control
// calls only — never per packet.
//
// Large tables (flow table, indexes, batch buffers) get whole fresh pages
// with memory.grow and live as long as the module. Control-plane objects (a
// group's target list, its lookup table) come from a power-of-two size-class
// allocator so reconfiguration can free them. (AssemblyScript's TLSF heap
// would grow memory by doubling it, which with a 1 GiB flow table is not
// acceptable.)

const PAGE: usize = 65536;
const HEADER: usize = 16; // class number, keeps payloads 16-byte aligned
const MIN_CLASS: u32 = 5; // 32-byte blocks
const MAX_CLASS: u32 = 31;
/** The heap grows by CHUNK, then by as much as it already has (at most MAX_CHUNK) at a time. */
const CHUNK: usize = 1 << 20;
const MAX_CHUNK: usize = 1 << 26;

// Free-list heads per class, and the current bump region.
const freeHeads = memory.data(8 * 32);
let bump: usize = 0;
let bumpEnd: usize = 0;
let heapGrown: usize = 0; // bytes the heap took from memory.grow

/** Reserve `size` zeroed bytes of fresh pages; 0 when memory cannot grow. */
export function reservePages(size: usize): usize {
  let pages = <i32>((size + PAGE - 1) / PAGE);
  let before = memory.grow(pages);
  if (before < 0) return 0;
  return <usize>before * PAGE; // fresh pages are zero
}

function classOf(size: usize): u32 {
  let need = size + HEADER;
  let c = <u32>(64 - clz<u64>(<u64>need - 1));
  return c < MIN_CLASS ? MIN_CLASS : c;
}

/** A zeroed block of at least `size` bytes for control-plane data; 0 when out of memory. */
export function heapAlloc(size: usize): usize {
  let c = classOf(size);
  if (c > MAX_CLASS) return 0;
  let block: usize = 0;
  let head = freeHeads + (<usize>c << 3);
  let blockSize = <usize>1 << c;
  if (load<u64>(head) != 0) {
    block = <usize>load<u64>(head);
    store<u64>(head, load<u64>(block + 8));
    memory.fill(block + HEADER, 0, blockSize - HEADER); // a freed block: zeroed again (bump blocks are fresh pages, zero)
  } else {
    if (bump + blockSize > bumpEnd) {
      // geometric: each memory.grow counts against V8's heap and may start a full garbage collection of the host's
      // JS heap (a million groups set up with 1 MiB steps spent most of their time there)
      let chunk = heapGrown < CHUNK ? CHUNK : heapGrown < MAX_CHUNK ? heapGrown : MAX_CHUNK;
      if (chunk < blockSize) chunk = blockSize;
      let p = reservePages(chunk);
      if (p == 0) return 0;
      heapGrown += chunk;
      if (p != bumpEnd) bump = p; // not contiguous: abandon the old tail
      bumpEnd = p + ((chunk + PAGE - 1) & ~(PAGE - 1));
    }
    block = bump;
    bump += blockSize;
  }
  store<u32>(block, c);
  return block + HEADER;
}

export function heapFree(p: usize): void {
  if (p == 0) return;
  let block = p - HEADER;
  let c = load<u32>(block);
  let head = freeHeads + (<usize>c << 3);
  store<u64>(block + 8, load<u64>(head));
  store<u64>(head, <u64>block);
}

/** Exported: a host buffer of `size` bytes (page-aligned, zeroed). 0 when memory cannot grow. */
export function alloc_buffer(size: u32): usize {
  return reservePages(<usize>size);
}

/** Exported: current linear memory size in bytes. */
export function memory_bytes(): f64 {
  return <f64>memory.size() * <f64>PAGE;
}
