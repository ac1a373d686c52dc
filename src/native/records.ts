/**
 * Completion records of the native relay engines (splice, sockmap and uring share the shape, defined in
 * native/src/completion.zig): 32 bytes each, {id, bytes a->b, bytes b->a: u64; reason, errno: u32}.
 * JS drains them by polling; no native thread ever calls into JS.
 * @module
 */

/** Close reasons, by the engines' code (completion.Reason). */
export const RELAY_REASONS = ["done", "a_reset", "b_reset", "idle_timeout", "a_error", "b_error", "shutdown", "migrate", "overflow", "connect_failed", "connect_timeout"] as const;
export type RelayReason = (typeof RELAY_REASONS)[number];

export type OnRecord = (id: number, aToB: number, bToA: number, reason: RelayReason, errno: number) => void;

const RECORD_BYTES = 32;
const BATCH = 256;
const buffer = new ArrayBuffer(RECORD_BYTES * BATCH);
const bytes = new Uint8Array(buffer);
const u64 = new BigUint64Array(buffer);
const u32 = new Uint32Array(buffer);

/** Call `poll(buf, max)` until it returns less than a full batch; decode each record. */
export function drainRecords(poll: (buf: Uint8Array, max: number) => number, onRecord: OnRecord): number {
  let total = 0;
  for (;;) {
    const n = poll(bytes, BATCH);
    for (let i = 0; i < n; i++) {
      const w = i * 4;
      onRecord(Number(u64[w]), Number(u64[w + 1]), Number(u64[w + 2]), RELAY_REASONS[u32[w * 2 + 6]!] ?? "a_error", u32[w * 2 + 7]!);
    }
    total += n;
    if (n < BATCH) return total;
  }
}
