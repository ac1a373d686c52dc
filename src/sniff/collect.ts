/**
 * The bound on the bytes collected from a client before it is routed (the pipeline keeps them in a
 * ByteQueue, src/net/byte-queue.ts, in src/proxy/intake.ts). Chunks are kept as Bun delivered them and
 * joined only when a sniffer asks, so a hello that arrives one byte at a time costs one join per read.
 *
 * Bounds, and why:
 * - size, {@link MAX_SNIFF_BYTES}: the bytes read, record headers included. The hello itself is
 *   bounded by its sniffer (src/sniff/tls-hello.ts: a handshake message of at most 2^14 bytes, as
 *   one record could carry; a post-quantum key share makes about 1.7 KB); this bound only has to let
 *   the longest legal framing of that message through, which is one byte per record (RFC 8446 §5.1
 *   allows it): six bytes read per byte of hello. Once this much is collected the sniffer is told it
 *   has all it will get (`full`), and a need-more is a refusal. Anything longer is not a hello we
 *   will route on, and reading without a cap is a memory attack.
 * - the queue's own limit is the sniff bound plus one read: the read that crosses the bound is kept
 *   whole (a passthrough must send every byte read on), and no read follows it.
 * - time, the listener's handshakeTimeoutMs: a client that sends one byte a minute must not hold a
 *   connection slot; the timeout sweeper enforces it (no timer per connection).
 * Pure: no Bun.
 * @module
 */
import { ByteQueue } from "../net/byte-queue.ts";
import { MAX_HANDSHAKE_MESSAGE, RECORD_HEADER } from "./tls-hello.ts";

/** A hello of the longest accepted size sent one byte per record: 6 × 16 KiB = 96 KiB. */
export const MAX_SNIFF_BYTES = MAX_HANDSHAKE_MESSAGE * (RECORD_HEADER + 1);

/** The most one socket read delivers: Bun 1.4.5's receive buffer (uSockets LIBUS_RECV_BUFFER_LENGTH). */
export const MAX_READ_BYTES = 512 * 1024;

/** The reason a connection closes with when a read would pass the collector's limit. */
export const COLLECTOR_OVERFLOW = "first_bytes_too_long";

/** An empty collector. */
export function newCollector(): ByteQueue {
  return new ByteQueue(MAX_SNIFF_BYTES + MAX_READ_BYTES, COLLECTOR_OVERFLOW);
}

/** Whether `collected` holds all a sniffer will ever be given. */
export function collectorFull(collected: ByteQueue): boolean {
  return collected.size >= MAX_SNIFF_BYTES;
}

/**
 * Replace what `collected` holds with everything peeked so far (MSG_PEEK returns the queue from its
 * first byte each time, so each peek replaces the last).
 */
export function replaceWithPeeked(collected: ByteQueue, all: Uint8Array): void {
  collected.clear();
  collected.push(all);
}
