// The replies the legacy targets would send, in the reference model
// (assembly/host/reflect.ts): for every packet a batch forwarded NATed to a
// target, the same packet with addresses and ports swapped (an echo request
// answered), to feed back in as the target's reply. Not a pipeline stage.

import { AuxFlag, Verdict } from "../../../assembly/shared/abi.js";
import type { ModelPacket, ModelResult } from "../batch.js";
import { Fallback, l4Fresh, l4Ok } from "../checksum.js";
import { addrLen, be16, dstOffset, icmpProto, isEchoRequest, parsePacket, put16, srcOffset, PROTO_TCP, PROTO_UDP } from "../parse.js";

/**
 * The replies the legacy targets would send to the forwarded NATed packets
 * of a processed batch (reflect_batch): addresses and ports swapped, an echo
 * request answered; null where there is none. Feed them to process().
 */
export function reflect(results: readonly (ModelResult | null)[]): (ModelPacket | null)[] {
  return results.map((r) => {
    if (r === null || r.verdict !== Verdict.Forward) return null;
    if ((r.aux & AuxFlag.ToTarget) === 0 || (r.aux & (AuxFlag.Encapsulated | AuxFlag.IcmpError)) !== 0) return null;
    const b = r.data.slice();
    if (!swapReply(b, r.link, r.wirelen)) return null;
    return { data: b, link: r.link, time: r.time, wirelen: r.wirelen, reflected: true };
  });
}

/** The reply a legacy target would send (reflect_batch's swap); false when there is none. */
function swapReply(b: Uint8Array, link: number, wirelen: number): boolean {
  const p = parsePacket(b, 0, b.length, wirelen, link);
  if (typeof p === "number" || !p.hasL4Header) return false;
  const family = p.family;
  const icmpRequest = p.proto === icmpProto(family) && isEchoRequest(family, p.icmpType);
  if (p.proto !== PROTO_TCP && p.proto !== PROTO_UDP && !icmpRequest) return false;
  const wasOk = l4Ok(b, p);
  const n = addrLen(family);
  const sAt = p.l3 + srcOffset(family);
  const dAt = p.l3 + dstOffset(family);
  const s = b.slice(sAt, sAt + n);
  b.copyWithin(sAt, dAt, dAt + n);
  b.set(s, dAt); // swapping is checksum-neutral
  if (p.proto === PROTO_TCP || p.proto === PROTO_UDP) {
    const sp = be16(b, p.l4);
    put16(b, p.l4, be16(b, p.l4 + 2));
    put16(b, p.l4 + 2, sp);
  } else {
    const oldWord = be16(b, p.l4);
    b[p.l4] = family === 4 ? 0 : 129;
    if (wasOk) l4Fresh(b, family, p.l3, p.proto, p.l4, p.l4Len, p.csumAt);
    else new Fallback().word(oldWord, be16(b, p.l4)).applyAt(b, p.csumAt); // FALLBACK
  }
  if (link === 1 && b.length >= 14) {
    const mac = b.slice(0, 6);
    b.copyWithin(0, 6, 12);
    b.set(mac, 6);
  }
  return true;
}
