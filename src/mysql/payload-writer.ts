/**
 * Builds a MySQL packet payload from the protocol's basic types (little-endian fixed integers,
 * length-encoded integers and strings, NUL-terminated strings) and frames it into packets.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_data_types.html
 * Pure: no Bun.
 * @module
 */
import { LENENC_2_BYTES, LENENC_3_BYTES, LENENC_8_BYTES } from "./payload-reader.ts";
import { MAX_PACKET_PAYLOAD, PACKET_HEADER_BYTES } from "./packet-framer.ts";

const utf8 = new TextEncoder();

export class PayloadWriter {
  #buf = new Uint8Array(128);
  #len = 0;

  #room(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const grown = new Uint8Array(Math.max(this.#buf.length * 2, this.#len + n));
    grown.set(this.#buf.subarray(0, this.#len));
    this.#buf = grown;
  }

  u8(v: number): this {
    this.#room(1);
    this.#buf[this.#len++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    return this.u8(v).u8(v >>> 8);
  }

  u24(v: number): this {
    return this.u8(v).u8(v >>> 8).u8(v >>> 16);
  }

  u32(v: number): this {
    return this.u8(v).u8(v >>> 8).u8(v >>> 16).u8(v >>> 24);
  }

  bytes(b: Uint8Array): this {
    this.#room(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  zeros(n: number): this {
    this.#room(n);
    this.#buf.fill(0, this.#len, this.#len + n);
    this.#len += n;
    return this;
  }

  /** string<NUL>; refuses a value that holds a NUL itself (it would end the string early). */
  nulString(s: string | Uint8Array): this {
    const b = typeof s === "string" ? utf8.encode(s) : s;
    if (b.includes(0)) throw new RangeError("PayloadWriter: a NUL-terminated string cannot hold a NUL");
    return this.bytes(b).u8(0);
  }

  /** int<lenenc>: 1, 3, 4 or 9 bytes. */
  lenencInt(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`PayloadWriter: ${n} is not a length-encodable integer`);
    if (n < 251) return this.u8(n);
    if (n < 0x1_0000) return this.u8(LENENC_2_BYTES).u16(n);
    if (n < 0x100_0000) return this.u8(LENENC_3_BYTES).u24(n);
    return this.u8(LENENC_8_BYTES).u32(n % 0x1_0000_0000).u32(Math.floor(n / 0x1_0000_0000));
  }

  /** string<lenenc>. */
  lenencString(s: string | Uint8Array): this {
    const b = typeof s === "string" ? utf8.encode(s) : s;
    return this.lenencInt(b.length).bytes(b);
  }

  get length(): number {
    return this.#len;
  }

  /** The payload written so far (a copy). */
  payload(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }
}

/**
 * `payload` as wire packets starting at `sequenceId`: 3-byte little-endian length, sequence id,
 * then at most 0xFFFFFF payload bytes per packet; a payload that fills its last packet exactly is
 * followed by an empty packet, so the receiver knows the message ended.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_packets.html
 */
export function toPackets(payload: Uint8Array, sequenceId: number): Uint8Array {
  const count = Math.floor(payload.length / MAX_PACKET_PAYLOAD) + 1;
  const out = new Uint8Array(payload.length + count * PACKET_HEADER_BYTES);
  let at = 0;
  for (let i = 0; i < count; i++) {
    const part = payload.subarray(i * MAX_PACKET_PAYLOAD, Math.min(payload.length, (i + 1) * MAX_PACKET_PAYLOAD));
    out[at] = part.length & 0xff;
    out[at + 1] = (part.length >>> 8) & 0xff;
    out[at + 2] = part.length >>> 16;
    out[at + 3] = (sequenceId + i) & 0xff;
    out.set(part, at + PACKET_HEADER_BYTES);
    at += PACKET_HEADER_BYTES + part.length;
  }
  return out;
}
