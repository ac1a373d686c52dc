/**
 * What JS needs around a paused socket it peeks at (native/src/peek_wait.zig): a notice when NEW
 * bytes, its FIN or a reset arrive (peeked bytes stay queued, so plain readability would report it
 * forever), and a discard of the queued bytes before a refusal closes it, so the client gets FIN, not
 * RST. Notices are event-driven: a native thread rings a pipe that Bun reads like any stream, and each
 * ring drains every notice (no timer runs while nothing arrives).
 * Its own symbol table over the library (src/native/own-symbols.ts).
 * @module
 */
import { FFIType, type Library } from "bun:ffi";
import { errnoName } from "./index.ts";
import { openSymbols } from "./own-symbols.ts";

const SYMBOLS = {
  sy_peekwait_start: { args: [], returns: FFIType.i32 },
  sy_peekwait_add: { args: [FFIType.i32, FFIType.u32], returns: FFIType.i32 },
  sy_peekwait_remove: { args: [FFIType.i32], returns: FFIType.i32 },
  sy_peekwait_poll: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  sy_peekwait_discard: { args: [FFIType.i32], returns: FFIType.i32 },
} as const;

/** Bits of a notice (ARRIVED / ENDED in peek_wait.zig). */
export const NOTICE = { arrived: 1, ended: 2 } as const;

export type OnNotice = (token: number, bits: number) => void;

type Lib = Library<typeof SYMBOLS>["symbols"];
let lib: Lib | null | undefined;
let why = "";
let onNotice: OnNotice = () => {};

/** The library with the waiter started and its bell read, or null (and `why`). */
function peekWaitLibrary(): Lib | null {
  if (lib !== undefined) return lib;
  const opened = openSymbols(SYMBOLS);
  if (!opened.ok) {
    why = opened.why;
    return (lib = null);
  }
  const bell = opened.symbols.sy_peekwait_start();
  if (bell < 0) {
    why = `peek waiter did not start: ${errnoName(bell)}`;
    return (lib = null);
  }
  listen(bell, opened.symbols).catch((e: unknown) => {
    // No more notices: later connections read instead (waiting ones end at their handshake timeout).
    why = `the peek waiter's bell stopped: ${(e as Error)?.message ?? e}`;
    lib = null;
  });
  return (lib = opened.symbols);
}

const NOTICES_PER_POLL = 64;
const notices = new Uint32Array(2 * NOTICES_PER_POLL);

/** Each ring of the bell: every notice since the last one, to {@link onNotice}. */
async function listen(bell: number, l: Lib): Promise<void> {
  for await (const _ring of Bun.file(bell).stream()) {
    for (;;) {
      const n = l.sy_peekwait_poll(notices, NOTICES_PER_POLL);
      for (let i = 0; i < n; i++) onNotice(notices[2 * i]!, notices[2 * i + 1]!);
      if (n < NOTICES_PER_POLL) break; // fewer than asked: drained, and the bell is re-armed
    }
  }
}

/** Why sockets cannot be peeked and waited on here (then the sniff stage reads), or null when they can. */
export function peekWaitUnavailable(): string | null {
  return peekWaitLibrary() ? null : why;
}

/** Where notices go (one receiver per process: the sniff stage's peek path). */
export function onArrivals(receiver: OnNotice): void {
  onNotice = receiver;
}

/** Notify `token` when bytes (or FIN, a reset) arrive on `fd`. null, or the errno name. */
export function watchArrivals(fd: number, token: number): string | null {
  const rc = peekWaitLibrary()?.sy_peekwait_add(fd, token) ?? -1;
  return rc < 0 ? errnoName(rc) : null;
}

export function unwatchArrivals(fd: number): void {
  peekWaitLibrary()?.sy_peekwait_remove(fd);
}

/** Throw away the bytes queued on `fd` (before a refusal closes it); how many (0 on an error). */
export function discardQueued(fd: number): number {
  return Math.max(0, peekWaitLibrary()?.sy_peekwait_discard(fd) ?? 0);
}
