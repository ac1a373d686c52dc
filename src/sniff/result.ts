/**
 * What every sniffer answers: the bytes are its protocol (`match`, with the facts it read), they are
 * not (`no-match`, with a named reason), or it cannot tell yet (`need-more`). "Need more" is never a
 * failure: the collector decides when waiting has lasted or grown too long.
 * @module
 */
export type SniffResult<F> =
  | { readonly kind: "match"; readonly facts: F }
  | { readonly kind: "no-match"; readonly reason: string }
  | { readonly kind: "need-more" };

export const NEED_MORE = { kind: "need-more" } as const;

export function noMatch(reason: string): { readonly kind: "no-match"; readonly reason: string } {
  return { kind: "no-match", reason };
}

/** Thrown inside a parser when the bytes break the protocol's grammar; caught at its entry point. */
export class Malformed extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/** A bounds-checked big-endian reader over one message. */
export class Cursor {
  pos: number;
  constructor(readonly bytes: Uint8Array, start = 0, readonly end = bytes.length) {
    this.pos = start;
  }

  get left(): number {
    return this.end - this.pos;
  }

  u8(what: string): number {
    if (this.pos + 1 > this.end) throw new Malformed(`truncated_${what}`);
    return this.bytes[this.pos++]!;
  }

  u16(what: string): number {
    if (this.pos + 2 > this.end) throw new Malformed(`truncated_${what}`);
    const v = (this.bytes[this.pos]! << 8) | this.bytes[this.pos + 1]!;
    this.pos += 2;
    return v;
  }

  u32(what: string): number {
    if (this.pos + 4 > this.end) throw new Malformed(`truncated_${what}`);
    const b = this.bytes;
    const v = ((b[this.pos]! << 24) >>> 0) + (b[this.pos + 1]! << 16) + (b[this.pos + 2]! << 8) + b[this.pos + 3]!;
    this.pos += 4;
    return v;
  }

  /** A sub-cursor over the next `n` bytes, which this cursor skips. */
  take(n: number, what: string): Cursor {
    if (this.pos + n > this.end) throw new Malformed(`truncated_${what}`);
    const c = new Cursor(this.bytes, this.pos, this.pos + n);
    this.pos += n;
    return c;
  }

  /** Read `u8`/`u16`-length-prefixed vector and return a cursor over its contents. */
  vector8(what: string): Cursor {
    return this.take(this.u8(what), what);
  }

  vector16(what: string): Cursor {
    return this.take(this.u16(what), what);
  }

  /** A list of u16 values that fills this cursor exactly. */
  u16List(what: string): number[] {
    if (this.left % 2 !== 0) throw new Malformed(`odd_length_${what}`);
    const out: number[] = [];
    while (this.left > 0) out.push(this.u16(what));
    return out;
  }
}
