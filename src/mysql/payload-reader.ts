/**
 * A bounds-checked little-endian reader over one MySQL packet payload, with the protocol's basic
 * types (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_data_types.html):
 * fixed-length integers, length-encoded integers and strings, NUL-terminated strings. A read past
 * the end throws Malformed with a `truncated_<field>` reason; parsers catch it at their entry
 * point and return it as a named error. Pure: no Bun.
 * @module
 */

/** Thrown inside a parser when the payload breaks the grammar; caught at its entry point. */
export class Malformed extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

// page_protocol_basic_dt_integers.html#sect_protocol_basic_dt_int_le: the first byte of an int<lenenc>.
/** 0xFB is NULL in a text row, never a length. */
export const LENENC_NULL = 0xfb;
export const LENENC_2_BYTES = 0xfc;
export const LENENC_3_BYTES = 0xfd;
export const LENENC_8_BYTES = 0xfe;

const utf8 = new TextDecoder();

export class PayloadReader {
  pos: number;
  constructor(readonly bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.pos = start;
  }

  get left(): number {
    return this.end - this.pos;
  }

  #need(n: number, what: string): void {
    if (this.pos + n > this.end) throw new Malformed(`truncated_${what}`);
  }

  u8(what: string): number {
    this.#need(1, what);
    return this.bytes[this.pos++]!;
  }

  u16(what: string): number {
    this.#need(2, what);
    const b = this.bytes;
    const v = b[this.pos]! | (b[this.pos + 1]! << 8);
    this.pos += 2;
    return v;
  }

  u24(what: string): number {
    this.#need(3, what);
    const b = this.bytes;
    const v = b[this.pos]! | (b[this.pos + 1]! << 8) | (b[this.pos + 2]! << 16);
    this.pos += 3;
    return v;
  }

  u32(what: string): number {
    this.#need(4, what);
    const b = this.bytes;
    const v = (b[this.pos]! | (b[this.pos + 1]! << 8) | (b[this.pos + 2]! << 16) | (b[this.pos + 3]! << 24)) >>> 0;
    this.pos += 4;
    return v;
  }

  /** The next `n` bytes, as a view. */
  fixed(n: number, what: string): Uint8Array {
    this.#need(n, what);
    const out = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Everything left (string<EOF>). */
  rest(): Uint8Array {
    const out = this.bytes.subarray(this.pos, this.end);
    this.pos = this.end;
    return out;
  }

  /** string<NUL>: the bytes before the next 0x00, which is skipped. */
  nulBytes(what: string): Uint8Array {
    const at = this.bytes.indexOf(0, this.pos);
    if (at < 0 || at >= this.end) throw new Malformed(`truncated_${what}`);
    const out = this.bytes.subarray(this.pos, at);
    this.pos = at + 1;
    return out;
  }

  nulString(what: string): string {
    return utf8.decode(this.nulBytes(what));
  }

  /**
   * int<lenenc>. Values above 2^53 - 1 are refused (`integer_too_large`): they cannot be held
   * exactly, and nothing the proxy reads (lengths, row counts during the handshake) comes near.
   */
  lenencInt(what: string): number {
    const first = this.u8(what);
    if (first < LENENC_NULL) return first;
    switch (first) {
      case LENENC_2_BYTES:
        return this.u16(what);
      case LENENC_3_BYTES:
        return this.u24(what);
      case LENENC_8_BYTES: {
        const low = this.u32(what);
        const high = this.u32(what);
        if (high > 0x1fffff) throw new Malformed("integer_too_large");
        return high * 0x1_0000_0000 + low;
      }
      default: // 0xFB (NULL) and 0xFF (an ERR packet's marker) are not integers
        throw new Malformed(`bad_lenenc_${what}`);
    }
  }

  /** string<lenenc>, as a view. */
  lenencBytes(what: string): Uint8Array {
    const n = this.lenencInt(what);
    return this.fixed(n, what);
  }

  lenencString(what: string): string {
    return utf8.decode(this.lenencBytes(what));
  }
}

/** Run `parse`, turning a Malformed into `{ kind: "error", reason }`. */
export function guarded<T>(parse: () => T): T | { readonly kind: "error"; readonly reason: string } {
  try {
    return parse();
  } catch (e) {
    if (e instanceof Malformed) return { kind: "error", reason: e.reason };
    throw e;
  }
}
