/**
 * The uring relay engine's JS face (native/src/uring.zig): one io_uring per process, its own native
 * thread, multishot receives into a provided-buffer ring and sends from those buffers, so the bytes
 * never enter the JS heap and a message costs no system call of its own. Same handover and the same
 * completion records as splice (src/relay/handover.ts drains both). SWITCHYARD_NATIVE_URING=off
 * refuses it as a host without io_uring would (tests of the fallback).
 * Its own symbol table over the library (src/native/own-symbols.ts).
 * @module
 */
import { FFIType, type Library } from "bun:ffi";
import { readFileSync } from "node:fs";
import { constants } from "node:os";
import { errnoName, nativeEnv } from "./index.ts";
import { openSymbols } from "./own-symbols.ts";
import { drainRecords, type OnRecord } from "./records.ts";

const SYMBOLS = {
  sy_uring_probe: { args: [], returns: FFIType.i32 },
  sy_uring_probe_step: { args: [], returns: FFIType.i32 },
  sy_uring_start: { args: [], returns: FFIType.i32 },
  sy_uring_add: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.i32 },
  sy_uring_poll: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  sy_uring_active: { args: [], returns: FFIType.i32 },
  sy_uring_streams_to_splice: { args: [FFIType.i32], returns: FFIType.i32 },
  sy_uring_streams_handed: { args: [], returns: FFIType.i64 },
} as const;

/** What the probe was trying when it failed (uring.ProbeStep). */
const PROBE_STEPS = ["", "io_uring_setup", "IORING_FEAT_FAST_POLL/NODROP/SUBMIT_STABLE", "opcodes RECV/SEND/SENDMSG/ASYNC_CANCEL/TIMEOUT/POLL_ADD", "provided-buffer ring (IORING_REGISTER_PBUF_RING, Linux 5.19)", "multishot receive (IORING_RECV_MULTISHOT, Linux 6.0)"];

type Lib = Library<typeof SYMBOLS>["symbols"];
let lib: Lib | null | undefined;
let openWhy = "";

function uringLibrary(): Lib | null {
  if (lib !== undefined) return lib;
  const opened = openSymbols(SYMBOLS);
  if (opened.ok) return (lib = opened.symbols);
  openWhy = opened.why;
  return (lib = null);
}

/** /proc/sys/kernel/io_uring_disabled (0 allowed, 1 only for io_uring_group, 2 nobody), or null. */
function ioUringDisabled(): string | null {
  try {
    return readFileSync("/proc/sys/kernel/io_uring_disabled", "utf8").trim();
  } catch {
    return null;
  }
}

/** Why the uring engine cannot be used here, or null when it can (probes without starting it). */
export function uringUnusable(): string | null {
  const l = uringLibrary();
  if (!l) return `native library not loaded: ${openWhy}`;
  if (nativeEnv().SWITCHYARD_NATIVE_URING === "off") return "refused by SWITCHYARD_NATIVE_URING=off";
  const rc = l.sy_uring_probe();
  if (rc >= 0) return null;
  const step = PROBE_STEPS[l.sy_uring_probe_step()] || "probe";
  const disabled = errnoName(rc) === "EPERM" ? ioUringDisabled() : null;
  return `${step} refused: ${errnoName(rc)}${disabled && disabled !== "0" ? ` (kernel.io_uring_disabled=${disabled})` : ""}`;
}

/** Start the engine's ring and thread (once). Null on success, else why not. */
export function uringStart(): string | null {
  const why = uringUnusable();
  if (why) return why;
  const rc = uringLibrary()!.sy_uring_start();
  return rc < 0 ? `uring engine did not start: ${errnoName(rc)}` : null;
}

/**
 * relay auto: the engine hands a pair to splice once one direction has moved 1 MiB with nothing
 * coming back (native/src/uring.zig, "Streams"); its record then comes from splice's queue. Both
 * engines must have started. Null, or why not.
 */
export function uringStreamsToSplice(): string | null {
  const l = uringLibrary();
  if (!l) return `native library not loaded: ${openWhy}`;
  const rc = l.sy_uring_streams_to_splice(1);
  return rc < 0 ? errnoName(rc) : null;
}

/** Streams the engine has handed to splice so far. */
export function uringStreamsHanded(): number {
  return lib ? Number(lib.sy_uring_streams_handed()) : 0;
}

/**
 * Hand two connected sockets to the engine (it dups them; the caller keeps owning its fds).
 * `idleMs` 0 = no idle timeout. 0, or -errno (nothing was taken over then).
 */
export function uringAdd(fdA: number, fdB: number, idleMs: number, id: number): number {
  const l = uringLibrary();
  return l ? l.sy_uring_add(fdA, fdB, idleMs, id) : -constants.errno.ENOTCONN;
}

/** Drain completed pairs (the same records as splice's). Never blocks. */
export function uringPoll(onRecord: OnRecord): number {
  const l = lib; // not opened yet: nothing was handed over
  return l ? drainRecords(l.sy_uring_poll, onRecord) : 0;
}

/** Pairs handed over and not completed yet. */
export function uringActive(): number {
  return lib ? lib.sy_uring_active() : 0;
}
