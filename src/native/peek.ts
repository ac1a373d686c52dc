/**
 * peek: the first bytes waiting on a socket without consuming them (native/src/peek.zig,
 * recv(MSG_PEEK | MSG_DONTWAIT)), so TLS passthrough and fingerprinting route on a ClientHello
 * and then relay the connection from its first byte, with nothing to replay.
 * @module
 */
import { errnoName, nativeLib } from "./index.ts";

export type PeekResult =
  /** Up to `max` bytes that are waiting (they stay waiting: the next read returns them again). */
  | { readonly kind: "bytes"; readonly bytes: Uint8Array }
  /** Nothing has arrived yet (EAGAIN): wait for readability and ask again. */
  | { readonly kind: "nothing-yet" }
  /** The peer closed before sending anything more. */
  | { readonly kind: "closed" }
  /** The native library is not loaded: the caller reads (and replays) instead. */
  | { readonly kind: "unavailable" }
  | { readonly kind: "error"; readonly code: string };

/** Where the kernel copies peeked bytes; each result is a copy of just what came (usually far less). */
let scratch = new Uint8Array(0);

/** Peek at up to `max` bytes of socket `fd`. Never blocks. */
export function peek(fd: number, max: number): PeekResult {
  const lib = nativeLib();
  if (!lib) return { kind: "unavailable" };
  if (scratch.length < max) scratch = new Uint8Array(max);
  const n = lib.symbols.sy_peek(fd, scratch, max);
  if (n > 0) return { kind: "bytes", bytes: scratch.slice(0, n) };
  if (n === 0) return { kind: "closed" };
  const code = errnoName(n);
  return code === "EAGAIN" || code === "EWOULDBLOCK" ? { kind: "nothing-yet" } : { kind: "error", code };
}
