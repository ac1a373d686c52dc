/**
 * Listening sockets made natively (native/src/listen.zig) for the supervisor to hold and hand to
 * workers, and the unix datagram that sd_notify needs. Opens the same library as index.ts with its
 * own symbol table, so the process-model calls stay apart from the relay engines'.
 * Every function answers a named result; null from {@link socketsLibrary} means "not available here"
 * and callers fall back to what Bun does alone.
 * @module
 */
import { FFIType, type Library } from "bun:ffi";
import { errnoName } from "./index.ts";
import { openSymbols, type Opened } from "./own-symbols.ts";

const SYMBOLS = {
  sy_listen_inet: { args: [FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.u32], returns: FFIType.i32 },
  sy_listen_unix: { args: [FFIType.ptr, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sy_listen_backlog: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sy_dup: { args: [FFIType.i32], returns: FFIType.i32 },
  sy_local_port: { args: [FFIType.i32], returns: FFIType.i32 },
  sy_is_listening: { args: [FFIType.i32], returns: FFIType.i32 },
  sy_send_datagram: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  sy_close: { args: [FFIType.i32], returns: FFIType.i32 },
  sy_linger_zero: { args: [FFIType.i32], returns: FFIType.i32 },
  sy_monotonic_usec: { args: [], returns: FFIType.i64 },
} as const;

/** Bit flags of sy_listen_inet (native/src/listen.zig). */
export const LISTEN_FLAGS = { reusePort: 1, v6Only: 2, fastOpen: 4, deferAccept: 8 } as const;

type Lib = Library<typeof SYMBOLS>["symbols"];
let opened: Opened<typeof SYMBOLS> | undefined;
let why = "";

/** The library's socket calls, or null (and {@link socketsUnavailable} says why). */
function socketsLibrary(): Lib | null {
  opened ??= openSymbols(SYMBOLS);
  if (opened.ok) return opened.symbols;
  why = opened.why;
  return null;
}

/** Why native sockets cannot be made here, or null when they can. */
export function socketsUnavailable(): string | null {
  return socketsLibrary() ? null : why;
}

export type FdResult = { readonly ok: true; readonly fd: number } | { readonly ok: false; readonly error: string };

/** A listening TCP socket on `ip` (4 or 16 network-order bytes) and `port` (0: the kernel picks). */
export function listenInet(ip: Uint8Array, port: number, backlog: number, flags: number): FdResult {
  const l = socketsLibrary();
  if (!l) return { ok: false, error: why };
  const rc = l.sy_listen_inet(ip, ip.length === 16 ? 6 : 4, port, backlog, flags);
  return rc >= 0 ? { ok: true, fd: rc } : { ok: false, error: errnoName(rc) };
}

/** A listening unix stream socket at `path` (a stale file must be removed first). */
export function listenUnix(path: string, backlog: number): FdResult {
  const l = socketsLibrary();
  if (!l) return { ok: false, error: why };
  const bytes = Buffer.from(path);
  const rc = l.sy_listen_unix(bytes, bytes.length, backlog);
  return rc >= 0 ? { ok: true, fd: rc } : { ok: false, error: errnoName(rc) };
}

/**
 * Give a listening socket its accept queue length again (listen(2) on a listening socket updates it):
 * Bun.listen({fd}) listens with 511 itself. null, or why not (the errno name, or "unavailable").
 */
export function setBacklog(fd: number, backlog: number): string | null {
  const l = socketsLibrary();
  if (!l) return why;
  const rc = l.sy_listen_backlog(fd, backlog);
  return rc < 0 ? errnoName(rc) : null;
}

/** A close-on-exec duplicate of `fd` (the same open socket). */
export function dupFd(fd: number): FdResult {
  const l = socketsLibrary();
  if (!l) return { ok: false, error: why };
  const rc = l.sy_dup(fd);
  return rc >= 0 ? { ok: true, fd: rc } : { ok: false, error: errnoName(rc) };
}

/** The port a bound inet socket has, or 0 when unknown. */
export function localPort(fd: number): number {
  const rc = socketsLibrary()?.sy_local_port(fd) ?? -1;
  return rc > 0 ? rc : 0;
}

/** Whether an inherited fd is a listening socket ("unknown" without the library). */
export function isListening(fd: number): "yes" | "no" | "unknown" {
  const l = socketsLibrary();
  if (!l) return "unknown";
  return l.sy_is_listening(fd) === 1 ? "yes" : "no";
}

export function closeFd(fd: number): void {
  socketsLibrary()?.sy_close(fd);
}

/** Make the next close of `fd` send RST (SO_LINGER 0); nothing without the library. */
export function resetOnClose(fd: number): void {
  if (fd >= 0) socketsLibrary()?.sy_linger_zero(fd);
}

/** CLOCK_MONOTONIC in microseconds, or null without the library (Bun's hrtime starts at process start). */
export function monotonicUsec(): bigint | null {
  const l = socketsLibrary();
  return l ? BigInt(l.sy_monotonic_usec()) : null;
}

/** One datagram to a unix socket path ("@name": abstract namespace). null on success, else why not. */
export function sendDatagram(path: string, message: string): string | null {
  const l = socketsLibrary();
  if (!l) return why;
  const p = Buffer.from(path);
  const m = Buffer.from(message);
  const rc = l.sy_send_datagram(p, p.length, m, m.length);
  return rc < 0 ? errnoName(rc) : null;
}
