// Building pcapng files for tests (little-endian): blocks, a section header,
// interface descriptions with options, enhanced packet blocks.

/** A block: type, total length, body (padded by the caller to 4 bytes), total length again. */
function block(type: number, body: Uint8Array): Buffer {
  const b = Buffer.alloc(12 + body.length);
  b.writeUInt32LE(type, 0);
  b.writeUInt32LE(b.length, 4);
  b.set(body, 8);
  b.writeUInt32LE(b.length, b.length - 4);
  return b;
}

/** A section header block (version 1.0, section length unknown). */
export function shb(): Buffer {
  return block(0x0a0d0d0a, Uint8Array.of(0x4d, 0x3c, 0x2b, 0x1a, 1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff));
}

/** An interface description block: link type, snap length 65536, options already encoded (end of options included). */
export function idb(link: number, options: Uint8Array = new Uint8Array(0)): Buffer {
  const body = Buffer.alloc(8 + options.length);
  body.writeUInt16LE(link, 0);
  body.writeUInt32LE(65536, 4);
  body.set(options, 8);
  return block(1, body);
}

/** A minimal IPv4 packet (protocol 253, 10.0.0.1 -> 10.0.0.2): what these files carry. */
export const IP_PACKET = Uint8Array.of(0x45, 0, 0, 20, 0, 0, 0, 0, 64, 253, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2);

/** An enhanced packet block on interface `iface` (of its section) with a 64-bit timestamp. */
export function epb(iface: number, data: Uint8Array = IP_PACKET, ts = 0n): Buffer {
  const body = Buffer.alloc(20 + ((data.length + 3) & ~3));
  body.writeUInt32LE(iface, 0);
  body.writeUInt32LE(Number(ts >> 32n), 4);
  body.writeUInt32LE(Number(ts & 0xffffffffn), 8);
  body.writeUInt32LE(data.length, 12);
  body.writeUInt32LE(data.length, 16);
  body.set(data, 20);
  return block(6, body);
}
