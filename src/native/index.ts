/**
 * The only place bun:ffi is used. Loads libswitchyard.so (embedded in the compiled binary, or
 * native/zig-out/lib during development) and reports why when it cannot, so callers fall back to
 * pure-Bun code paths. Set SWITCHYARD_NATIVE=off to run without it (the fallback tests do), and
 * SWITCHYARD_NATIVE_SPLICE=off to load it but refuse the splice engine (simulates a host that
 * refuses splice).
 *
 * Every native function returns >= 0 or -errno; the wrappers here turn errno into its name.
 * @module
 */
import { dlopen, FFIType } from "bun:ffi";
import { constants } from "node:os";
import libPath from "./libswitchyard.so" with { type: "file" };
import { drainRecords, type OnRecord } from "./records.ts";

/** Must equal ABI_VERSION in native/src/lib.zig. */
const EXPECTED_ABI = 5;

const SYMBOLS = {
  sy_abi_version: { args: [], returns: FFIType.i32 },
  sy_splice_start: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sy_splice_add: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.i32 },
  sy_splice_poll: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  sy_splice_probe: { args: [], returns: FFIType.i32 },
  sy_splice_active: { args: [], returns: FFIType.i32 },
  // ---- sockmap relay, peek, CPU sampler (src/native/sockmap.ts, peek.ts, cpu.ts) ----
  sy_sockmap_start: { args: [], returns: FFIType.i32 },
  sy_sockmap_probe: { args: [], returns: FFIType.i32 },
  sy_sockmap_add: { args: [FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i64], returns: FFIType.i32 },
  sy_sockmap_poll: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  sy_sockmap_active: { args: [], returns: FFIType.i32 },
  sy_peek: { args: [FFIType.i32, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  sy_cpu_watch: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sy_cpu_unwatch: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sy_cpu_permille: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
} as const;

export type Lib = ReturnType<typeof dlopen<typeof SYMBOLS>>;

export type NativeStatus =
  | { readonly loaded: true; readonly path: string; readonly abi: number }
  | { readonly loaded: false; readonly reason: string };

let status: NativeStatus | null = null;
let lib: Lib | null = null;
let env: Record<string, string | undefined> = process.env;

/** Load the library once; later calls return the same status. */
export function nativeStatus(environment: Record<string, string | undefined> = process.env): NativeStatus {
  if (status) return status;
  env = environment;
  if (env.SWITCHYARD_NATIVE === "off") return (status = { loaded: false, reason: "disabled by SWITCHYARD_NATIVE=off" });
  try {
    const opened = dlopen(libPath, SYMBOLS);
    const abi = opened.symbols.sy_abi_version();
    if (abi !== EXPECTED_ABI) {
      opened.close();
      return (status = { loaded: false, reason: `library ABI ${abi}, expected ${EXPECTED_ABI}` });
    }
    lib = opened;
    return (status = { loaded: true, path: libPath, abi });
  } catch (e) {
    return (status = { loaded: false, reason: (e as Error).message.split("\n")[0] ?? String(e) });
  }
}

/** The loaded library for this module's feature files (sockmap.ts, peek.ts, cpu.ts); null without it. */
export function nativeLib(): Lib | null {
  nativeStatus();
  return lib;
}

/** The environment nativeStatus() was loaded with (feature switches such as SWITCHYARD_NATIVE_SOCKMAP). */
export function nativeEnv(): Record<string, string | undefined> {
  return env;
}

const ERRNO_NAMES = new Map<number, string>(Object.entries(constants.errno).map(([name, n]) => [n, name]));

/** "EINVAL" for -22. */
export function errnoName(rc: number): string {
  return ERRNO_NAMES.get(-rc) ?? ERRNO_NAMES.get(rc) ?? `errno ${Math.abs(rc)}`;
}

// ---- splice relay engine ---------------------------------------------------------------------

/** Why the splice engine cannot be used here, or null when it can (probes without starting it). */
export function spliceUnusable(): string | null {
  const s = nativeStatus();
  if (!s.loaded) return `native library not loaded: ${s.reason}`;
  if (env.SWITCHYARD_NATIVE_SPLICE === "off") return "refused by SWITCHYARD_NATIVE_SPLICE=off";
  const rc = lib!.symbols.sy_splice_probe();
  return rc < 0 ? `splice(2) refused on this host: ${errnoName(rc)}` : null;
}

/**
 * Start the engine's threads (once). Returns null on success, else why not. `pipeSize` 0 means
 * 1 MiB, capped by /proc/sys/fs/pipe-max-size.
 */
export function spliceStart(threads: number, pipeSize = 0): string | null {
  const why = spliceUnusable();
  if (why) return why;
  const rc = lib!.symbols.sy_splice_start(threads, pipeSize);
  return rc < 0 ? `splice engine did not start: ${errnoName(rc)}` : null;
}

/**
 * Hand two connected sockets to the engine (it dups them; the caller keeps owning its fds).
 * `idleMs` 0 = no idle timeout. Returns 0 or -errno (nothing was taken over then).
 */
export function spliceAdd(fdA: number, fdB: number, idleMs: number, id: number): number {
  return lib ? lib.symbols.sy_splice_add(fdA, fdB, idleMs, id) : -constants.errno.ENOTCONN;
}

/**
 * Drain completed pairs: `onRecord(id, bytesAtoB, bytesBtoA, reason, errno)` for each. Never blocks.
 * Returns how many records were delivered.
 */
export function splicePoll(onRecord: OnRecord): number {
  return lib ? drainRecords(lib.symbols.sy_splice_poll, onRecord) : 0;
}

/** Pairs the splice engine carries now (handed over, no record yet). */
export function spliceActive(): number {
  return lib ? lib.symbols.sy_splice_active() : 0;
}
