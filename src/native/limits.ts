/**
 * The gate's shared limits table (native/src/limits.zig) through bun:ffi: a memfd the supervisor
 * creates and every worker maps. Opens the library with its own symbol table, like sockets.ts.
 * @module
 */
import { dlopen, FFIType } from "bun:ffi";
import libPath from "./libswitchyard.so" with { type: "file" };
import { errnoName, nativeStatus } from "./index.ts";

const SYMBOLS = {
  sy_limits_create: { args: [], returns: FFIType.i32 },
  sy_limits_attach: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sy_limits_clear_column: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sy_limits_take: { args: [FFIType.u32, FFIType.u32, FFIType.u32, FFIType.u32, FFIType.u32, FFIType.i32], returns: FFIType.i32 },
  sy_limits_release: { args: [FFIType.u32, FFIType.u32], returns: FFIType.void },
  sy_limits_open: { args: [FFIType.u32, FFIType.u32], returns: FFIType.i32 },
} as const;

type Lib = ReturnType<typeof dlopen<typeof SYMBOLS>>["symbols"];
let lib: Lib | null | undefined;

function limitsLibrary(): Lib | null {
  if (lib !== undefined) return lib;
  if (!nativeStatus().loaded) return (lib = null);
  try {
    lib = dlopen(libPath, SYMBOLS).symbols;
  } catch {
    lib = null;
  }
  return lib;
}

/** A new table's fd, or why not. */
export function limitsCreate(): { ok: true; fd: number } | { ok: false; error: string } {
  const l = limitsLibrary();
  if (!l) return { ok: false, error: "native library not loaded" };
  const fd = l.sy_limits_create();
  return fd >= 0 ? { ok: true, fd } : { ok: false, error: errnoName(fd) };
}

/** Map the table behind `fd`, counting in `column`; null on success, else why not. */
export function limitsAttach(fd: number, column: number): string | null {
  const l = limitsLibrary();
  if (!l) return "native library not loaded";
  const rc = l.sy_limits_attach(fd, column);
  return rc < 0 ? errnoName(rc) : null;
}

/** Forget what an exited worker left counted in `column` (the supervisor); null on success, else why not. */
export function limitsClearColumn(fd: number, column: number): string | null {
  const l = limitsLibrary();
  if (!l) return "native library not loaded";
  const rc = l.sy_limits_clear_column(fd, column);
  return rc < 0 ? errnoName(rc) : null;
}

/** 0 admitted, 1 rate limited, 2 concurrency limited, 3 busy, 4 table full (see limits.zig). */
export function limitsTake(h1: number, h2: number, rate: number, burst: number, maxOpen: number, count: boolean): number {
  return lib ? lib.sy_limits_take(h1, h2, rate, burst, maxOpen, count ? 1 : 0) : 4;
}

export function limitsRelease(h1: number, h2: number): void {
  lib?.sy_limits_release(h1, h2);
}

export function limitsOpen(h1: number, h2: number): number {
  return lib ? lib.sy_limits_open(h1, h2) : 0;
}
