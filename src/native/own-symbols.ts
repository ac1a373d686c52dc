/**
 * A feature file's own symbol table over the library index.ts loads (sockets.ts, peek-wait.ts), so
 * each feature's calls stay apart from the relay engines'. "Not available here" carries its reason.
 * @module
 */
import { dlopen, type Library, type Symbols } from "bun:ffi";
import libPath from "./libswitchyard.so" with { type: "file" };
import { nativeStatus } from "./index.ts";

export type Opened<S extends Symbols> =
  | { readonly ok: true; readonly symbols: Library<S>["symbols"] }
  | { readonly ok: false; readonly why: string };

/** Open the library with `symbols`; call once per feature and keep the result. */
export function openSymbols<S extends Symbols>(symbols: S): Opened<S> {
  const s = nativeStatus();
  if (!s.loaded) return { ok: false, why: s.reason };
  try {
    return { ok: true, symbols: dlopen(libPath, symbols).symbols };
  } catch (e) {
    return { ok: false, why: (e as Error).message.split("\n")[0] ?? String(e) };
  }
}
