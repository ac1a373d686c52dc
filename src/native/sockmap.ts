/**
 * The sockmap relay engine's JS face (native/src/sockmap.zig): the kernel relays a TCP pair by
 * itself through a BPF sk_skb verdict program. Off unless SWITCHYARD_NATIVE_SOCKMAP=experimental:
 * on kernel 6.18 the redirect was seen to deliver bytes twice when a destination's send buffer
 * fills (README, Relay engines; bench/sockmap-duplicates.sh reproduces it), and a relay that can
 * corrupt a stream must not run because a config file names it. SWITCHYARD_NATIVE_SOCKMAP=off
 * refuses it as a host without CAP_BPF would (tests of the fallbacks).
 * @module
 */
import { constants } from "node:os";
import { errnoName, nativeEnv, nativeLib, nativeStatus } from "./index.ts";
import { drainRecords, type OnRecord } from "./records.ts";

const OFF_BY_DEFAULT =
  "off by default: the kernel's redirect delivered bytes twice under load in our tests (README, Relay engines); SWITCHYARD_NATIVE_SOCKMAP=experimental turns it on";

/** Why the sockmap engine cannot be used here, or null when it can (probes without starting it). */
export function sockmapUnusable(): string | null {
  const s = nativeStatus();
  if (!s.loaded) return `native library not loaded: ${s.reason}`;
  if (nativeEnv().SWITCHYARD_NATIVE_SOCKMAP === "off") return "refused by SWITCHYARD_NATIVE_SOCKMAP=off";
  const rc = nativeLib()!.symbols.sy_sockmap_probe();
  if (rc >= 0) return nativeEnv().SWITCHYARD_NATIVE_SOCKMAP === "experimental" ? null : OFF_BY_DEFAULT;
  const name = errnoName(rc);
  return name === "EPERM" ? "BPF refused (EPERM: needs CAP_BPF and CAP_NET_ADMIN)" : `BPF sockmap refused on this kernel: ${name}`;
}

/** Create the maps, load the program, start the engine's thread (once). Null on success, else why not. */
export function sockmapStart(): string | null {
  const why = sockmapUnusable();
  if (why) return why;
  const rc = nativeLib()!.symbols.sy_sockmap_start();
  return rc < 0 ? `sockmap engine did not start: ${errnoName(rc)}` : null;
}

/**
 * Hand two connected TCP sockets to the kernel relay. Every byte read from one must already be
 * written to the other. 0, or -errno (nothing taken over; EPROTONOSUPPORT: not TCP, EOPNOTSUPP:
 * not ESTABLISHED any more).
 */
export function sockmapAdd(fdA: number, fdB: number, idleMs: number, id: number): number {
  const lib = nativeLib();
  return lib ? lib.symbols.sy_sockmap_add(fdA, fdB, idleMs, id) : -constants.errno.ENOTCONN;
}

/** Drain completed pairs (the same records as splice's). Never blocks. */
export function sockmapPoll(onRecord: OnRecord): number {
  const lib = nativeLib();
  return lib ? drainRecords(lib.symbols.sy_sockmap_poll, onRecord) : 0;
}

/** Pairs the sockmap engine carries now. */
export function sockmapActive(): number {
  const lib = nativeLib();
  return lib ? lib.symbols.sy_sockmap_active() : 0;
}
