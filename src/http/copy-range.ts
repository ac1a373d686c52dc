/**
 * Copy `src[s..e)` into `out` at `at`, without making a view of `src` when the range is short.
 * Why: `src.subarray()` on a typed array JSC has not given an ArrayBuffer yet (every chunk a Bun
 * socket delivers) makes it allocate one first; in the HTTP hot path (a response head and a small body
 * out of one received chunk) those views cost more than copying a few hundred bytes one by one
 * (measured with bench/http.sh; see bench/results/2026-12-03-http.md). Pure.
 * @module
 */

/** Up to this many bytes are copied in a loop; longer ranges through one `set` of a view. */
const LOOP_MAX = 512;

/** Returns the index after the copied bytes in `out`. */
export function copyRange(out: Uint8Array, at: number, src: Uint8Array, s: number, e: number): number {
  const n = e - s;
  if (n <= LOOP_MAX) {
    for (let i = 0; i < n; i++) out[at + i] = src[s + i]!;
  } else {
    out.set(s === 0 && e === src.length ? src : src.subarray(s, e), at);
  }
  return at + n;
}
