/**
 * The only place bun:ffi is used. Loads libswitchyard.so (embedded in the compiled binary, or
 * native/zig-out/lib during development) and reports why when it cannot, so callers fall back to
 * pure-Bun code paths. Set SWITCHYARD_NATIVE=off to run without it (the fallback tests do).
 * @module
 */
import { dlopen, FFIType } from "bun:ffi";
import libPath from "./libswitchyard.so" with { type: "file" };

/** Must equal ABI_VERSION in native/src/lib.zig. */
const EXPECTED_ABI = 1;

const SYMBOLS = {
  sy_abi_version: { args: [], returns: FFIType.i32 },
} as const;

export type NativeStatus =
  | { readonly loaded: true; readonly path: string; readonly abi: number }
  | { readonly loaded: false; readonly reason: string };

let status: NativeStatus | null = null;

/** Load the library once; later calls return the same status. */
export function nativeStatus(env: Record<string, string | undefined> = process.env): NativeStatus {
  if (status) return status;
  if (env.SWITCHYARD_NATIVE === "off") return (status = { loaded: false, reason: "disabled by SWITCHYARD_NATIVE=off" });
  try {
    const lib = dlopen(libPath, SYMBOLS);
    const abi = lib.symbols.sy_abi_version();
    if (abi !== EXPECTED_ABI) {
      lib.close();
      return (status = { loaded: false, reason: `library ABI ${abi}, expected ${EXPECTED_ABI}` });
    }
    return (status = { loaded: true, path: libPath, abi });
  } catch (e) {
    return (status = { loaded: false, reason: (e as Error).message.split("\n")[0] ?? String(e) });
  }
}
