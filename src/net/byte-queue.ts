/**
 * A bounded FIFO of byte chunks: the one place bytes wait for a socket that cannot take them yet.
 * Chunks are kept as given (no copy on push); `peek` returns the first chunk so a writer can hand it
 * to the socket as is, `consume` drops what the socket took. The bound is a fact about the caller
 * (why it can never legitimately hold more), so an overflow is a bug or an abuse to refuse, not
 * memory to grow: push reports it and the caller closes the connection with `limitReason`.
 * @module
 */
export class ByteQueue {
  private chunks: Uint8Array[] = [];
  private head = 0;
  /** Bytes queued. */
  size = 0;

  constructor(
    /** Most bytes the queue may hold. */
    readonly limit: number,
    /** Why that is enough, and the reason a connection over it closes with. */
    readonly limitReason: string,
  ) {}

  /** Queue `bytes` at the end; false (and nothing queued) when they would pass the limit. */
  push(bytes: Uint8Array): boolean {
    if (this.size + bytes.length > this.limit) return false;
    if (bytes.length === 0) return true;
    this.chunks.push(bytes);
    this.size += bytes.length;
    return true;
  }

  /** Put `bytes` back in front (the unwritten tail of a write that started before the queued ones). */
  unshift(bytes: Uint8Array): void {
    if (bytes.length === 0) return;
    if (this.head > 0) this.chunks[--this.head] = bytes;
    else this.chunks.unshift(bytes);
    this.size += bytes.length;
  }

  /** The first chunk, or null when empty. */
  peek(): Uint8Array | null {
    return this.head < this.chunks.length ? this.chunks[this.head]! : null;
  }

  /** Drop the first `n` bytes (at most the first chunk's length). */
  consume(n: number): void {
    const first = this.chunks[this.head]!;
    this.size -= n;
    if (n < first.length) {
      this.chunks[this.head] = first.subarray(n);
      return;
    }
    this.chunks[this.head++] = EMPTY;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    }
  }

  /** Everything queued as one array (joined once, then kept as the only chunk): for parsers. */
  bytes(): Uint8Array {
    if (this.chunks.length - this.head === 1) return this.chunks[this.head]!;
    const out = new Uint8Array(this.size);
    let at = 0;
    for (let i = this.head; i < this.chunks.length; i++) {
      out.set(this.chunks[i]!, at);
      at += this.chunks[i]!.length;
    }
    this.chunks = this.size > 0 ? [out] : [];
    this.head = 0;
    return out;
  }

  /** Take everything out, as one array (null when empty). */
  drain(): Uint8Array | null {
    if (this.size === 0) return null;
    const all = this.bytes();
    this.clear();
    return all;
  }

  clear(): void {
    this.chunks.length = 0;
    this.head = 0;
    this.size = 0;
  }
}

const EMPTY = new Uint8Array(0);
