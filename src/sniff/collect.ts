/**
 * The one place that collects the first bytes of a connection before it is routed. Chunks are kept
 * as Bun delivered them (each data event is a fresh copy) and joined only when a sniffer asks, so a
 * hello that arrives one byte at a time costs one join per read, not one per byte per sniffer.
 *
 * Bounds, and why:
 * - size, {@link MAX_SNIFF_BYTES}: the bytes read, record headers included. The hello itself is
 *   bounded by its sniffer (src/sniff/tls-hello.ts: a handshake message of at most 2^14 bytes, as
 *   one record could carry; a post-quantum key share makes about 1.7 KB); this bound only has to let
 *   the longest legal framing of that message through, which is one byte per record (RFC 8446 §5.1
 *   allows it): six bytes read per byte of hello. Anything longer is not a hello we will route on,
 *   and reading without a cap is a memory attack.
 * - time, the listener's handshakeTimeoutMs: a client that sends one byte a minute must not hold a
 *   connection slot; the timeout sweeper enforces it (no timer per connection).
 * Pure: no Bun.
 * @module
 */
import { MAX_HANDSHAKE_MESSAGE, RECORD_HEADER } from "./tls-hello.ts";

/** A hello of the longest accepted size sent one byte per record: 6 × 16 KiB = 96 KiB. */
export const MAX_SNIFF_BYTES = MAX_HANDSHAKE_MESSAGE * (RECORD_HEADER + 1);

export class FirstBytes {
  #buffer: Uint8Array = new Uint8Array(0);
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Add a chunk; "full" when the bound is reached (the sniffer then has all it will ever get). */
  push(chunk: Uint8Array): "ok" | "full" {
    if (this.#length === 0) {
      this.#buffer = chunk; // the common case: the whole hello in one read, no copy
      this.#length = chunk.length;
    } else {
      // Nothing read is dropped: a passthrough must send every byte on, even past the bound.
      const need = this.#length + chunk.length;
      if (!this.#owned || need > this.#buffer.length) this.#grow(need);
      this.#buffer.set(chunk, this.#length);
      this.#length = need;
    }
    return this.#length >= MAX_SNIFF_BYTES ? "full" : "ok";
  }

  /**
   * Everything peeked so far (MSG_PEEK returns the queue from its first byte each time, so each peek
   * replaces the last); "full" as for {@link push}.
   */
  peeked(all: Uint8Array): "ok" | "full" {
    this.#buffer = all;
    this.#length = all.length;
    this.#owned = false;
    return this.#length >= MAX_SNIFF_BYTES ? "full" : "ok";
  }

  /** Everything read (or peeked) so far: what a passthrough of read bytes sends on first. */
  get bytes(): Uint8Array {
    return this.#buffer.subarray(0, this.#length);
  }

  #owned = false;

  /** Doubling growth: a hello read one byte at a time is copied O(n) times in total, not O(n²). */
  #grow(need: number): void {
    const next = new Uint8Array(Math.max(need, this.#owned ? this.#buffer.length * 2 : 2048));
    next.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = next;
    this.#owned = true;
  }
}
