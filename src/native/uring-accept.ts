/**
 * Native accept on the uring engine's ring (native/src/uring.zig "native accept", uring_accept.zig):
 * the engine accepts on a listening socket (multishot accept), tells JS of each client by an event
 * (listener id, token, address), and JS answers with a dial (upstream address, connect and idle
 * timeouts, the connection's id) or a refusal. A dialled connection is relayed by the engine and ends
 * with the same completion record as a handed-over pair (src/native/uring.ts drains those).
 *
 * Events are delivered event-driven: the engine rings a bell pipe that Bun reads like a stream, and
 * each ring drains every event (no timer runs while nothing arrives; see src/native/peek-wait.ts).
 * Its own symbol table over the library (src/native/own-symbols.ts).
 * @module
 */
import { FFIType, type Library } from "bun:ffi";
import { errnoName } from "./index.ts";
import { openSymbols } from "./own-symbols.ts";
import { formatIp, parseIp, type IpAddress } from "../net/ip.ts";
import type { DialTarget } from "../upstream/endpoint.ts";

const SYMBOLS = {
  sy_uring_bell: { args: [], returns: FFIType.i32 },
  sy_uring_listen: { args: [FFIType.i32, FFIType.u32], returns: FFIType.i32 },
  sy_uring_unlisten: { args: [FFIType.u32], returns: FFIType.i32 },
  sy_uring_events: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  sy_uring_connect: { args: [FFIType.i64, FFIType.i64, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32], returns: FFIType.i32 },
  sy_uring_refuse: { args: [FFIType.i64, FFIType.i32], returns: FFIType.i32 },
  sy_uring_kill: { args: [FFIType.i64], returns: FFIType.i32 },
} as const;

type Lib = Library<typeof SYMBOLS>["symbols"];
let lib: Lib | null | undefined;
let why = "";

/** What an event tells (uring_accept.EventKind). */
export interface AcceptEvents {
  /**
   * A client on listener `listener`, known to the engine as `token`, from `ip`:`port` ("unix", 0 for
   * a unix socket); `fd` is the engine's socket (only ever given to {@link resetOnClose}-like calls).
   */
  accepted(token: number, listener: number, ip: string, port: number, fd: number): void;
  /** The dial of connection `id` connected in `micros` µs on socket `fd`; the engine relays it from now on. */
  connected(id: number, micros: number, fd: number): void;
  /** One of the two threw (the bell goes on; an accepted client was reset), or the bell stopped. */
  failed(kind: "accepted" | "connected" | "bell", error: unknown): void;
}

let receiver: AcceptEvents | null = null;

/**
 * The library with the bell being read, or null (and `why`). The uring engine must have started
 * (src/relay/engine.ts) before this is first called.
 */
function acceptLibrary(): Lib | null {
  if (lib !== undefined) return lib;
  const opened = openSymbols(SYMBOLS);
  if (!opened.ok) {
    why = opened.why;
    return (lib = null);
  }
  const bell = opened.symbols.sy_uring_bell();
  if (bell < 0) {
    why = `the uring engine has not started: ${errnoName(bell)}`;
    return (lib = null);
  }
  listen(bell, opened.symbols).catch((e: unknown) => {
    // Without the bell no accepted client would ever be answered: nothing more may be accepted.
    why = `the uring engine's bell stopped: ${(e as Error)?.message ?? e}`;
    lib = null;
    receiver?.failed("bell", e);
  });
  return (lib = opened.symbols);
}

const EVENT_BYTES = 40;
const BATCH = 256;
const buffer = new ArrayBuffer(EVENT_BYTES * BATCH);
const bytes = new Uint8Array(buffer);
const u64 = new BigUint64Array(buffer);
const u32 = new Uint32Array(buffer);
const u16 = new Uint16Array(buffer);
const i32 = new Int32Array(buffer);
const KIND_ACCEPTED = 1;
const KIND_CONNECTED = 2;

async function listen(bell: number, l: Lib): Promise<void> {
  for await (const _ring of Bun.file(bell).stream()) drainEvents(l);
}

/** Every queued event to the receiver (fewer than a batch: drained, and the bell re-armed). */
function drainEvents(l: Lib): void {
  for (;;) {
    const n = l.sy_uring_events(bytes, BATCH);
    for (let i = 0; i < n; i++) {
      const key = Number(u64[i * 5]);
      const kind = u32[i * 10 + 2]!;
      const arg = u32[i * 10 + 3]!;
      // One event's failure must not end the loop: the bell would never be read again, and every
      // client accepted after it would wait unanswered.
      if (kind === KIND_CONNECTED) {
        try {
          receiver?.connected(key, arg, i32[i * 10 + 9]!);
        } catch (e) {
          receiver?.failed("connected", e);
        }
      } else if (kind === KIND_ACCEPTED) {
        const family = u16[i * 20 + 9]!;
        const port = u16[i * 20 + 8]!;
        const at = i * EVENT_BYTES + 20;
        const ip = family === 4 ? ipv4Text(at)
          : family === 6 ? formatIp({ family: 6, bytes: bytes.slice(at, at + 16) }) : "unix";
        if (!receiver) {
          l.sy_uring_refuse(key, 0);
          continue;
        }
        try {
          receiver.accepted(key, arg, ip, port, i32[i * 10 + 9]!);
        } catch (e) {
          l.sy_uring_refuse(key, 1); // no-op if the pipeline got as far as a dial: then its record comes
          receiver.failed("accepted", e);
        }
      }
    }
    if (n < BATCH) return;
  }
}

/**
 * The text of the IPv4 address at `at` in the event buffer: one string per address, not per
 * connection. Each connection keeps its client's address (Conn.clientIp) for its life; a template
 * literal made a new rope of 7 parts per accept, and with the number strings in it 2 strings (64 B of
 * heap) per idle connection. A direct-mapped cache (the last address seen per slot) costs nothing
 * when clients differ and shares the string when they repeat (one host, a NAT).
 */
function ipv4Text(at: number): string {
  const key = (bytes[at]! << 24) | (bytes[at + 1]! << 16) | (bytes[at + 2]! << 8) | bytes[at + 3]!;
  const slot = Math.imul(key, 0x9e3779b1) >>> (32 - IP_CACHE_BITS);
  const cached = ipTexts[slot];
  if (cached != null && ipKeys[slot] === key) return cached;
  const text = `${bytes[at]}.${bytes[at + 1]}.${bytes[at + 2]}.${bytes[at + 3]}`;
  ipTexts[slot] = text;
  ipKeys[slot] = key;
  return text;
}
const IP_CACHE_BITS = 10;
const ipKeys = new Int32Array(1 << IP_CACHE_BITS);
const ipTexts = new Array<string | null>(1 << IP_CACHE_BITS).fill(null);

/** Why native accept cannot run in this process, or null when it can (the uring engine runs). */
export function nativeAcceptUnavailable(): string | null {
  return acceptLibrary() ? null : why;
}

/** Where events go (one receiver per process: src/listen/native-accept.ts). */
export function onAcceptEvents(r: AcceptEvents): void {
  receiver = r;
}

/** Accept on listening socket `fd` as listener `id` (the engine works on its own dup). null, or the errno name. */
export function uringListen(fd: number, id: number): string | null {
  const l = acceptLibrary();
  if (!l) return why;
  const rc = l.sy_uring_listen(fd, id);
  return rc < 0 ? errnoName(rc) : null;
}

export function uringUnlisten(id: number): void {
  acceptLibrary()?.sy_uring_unlisten(id);
}

/**
 * Dial `target` for accepted `token` as connection `id`; its record comes whatever happens. null,
 * or why the engine refused the command (then no record comes).
 */
export function uringDial(token: number, id: number, target: DialTarget, connectTimeoutMs: number, idleMs: number): string | null {
  const l = acceptLibrary();
  if (!l) return why;
  let rc: number;
  if (target.kind === "unix") {
    const path = Buffer.from(target.path);
    rc = l.sy_uring_connect(token, id, 1, path, path.length, 0, connectTimeoutMs, idleMs);
  } else {
    const ip = parsedIp(target.ip);
    if (!ip) return `not an IP address: ${target.ip}`;
    rc = l.sy_uring_connect(token, id, ip.family, ip.bytes, ip.bytes.length, target.port, connectTimeoutMs, idleMs);
  }
  return rc < 0 ? errnoName(rc) : null;
}

/**
 * `text` parsed, from a small cache: a route's upstreams are a few addresses dialled again and again,
 * and parsing made an array, its strings and a Uint8Array per connection (garbage the accept burst
 * grew the heap with).
 */
function parsedIp(text: string): IpAddress | null {
  const cached = parsedIps.get(text);
  if (cached !== undefined) return cached;
  const ip = parseIp(text);
  if (!ip) return null;
  if (parsedIps.size >= 64) parsedIps.clear();
  parsedIps.set(text, ip);
  return ip;
}
const parsedIps = new Map<string, IpAddress>();

/** Close accepted `token` undialled: FIN, or RST with `reset`. */
export function uringRefuse(token: number, reset: boolean): void {
  acceptLibrary()?.sy_uring_refuse(token, reset ? 1 : 0);
}

/** Reset both sides of accepted `token`. */
export function uringKill(token: number): void {
  acceptLibrary()?.sy_uring_kill(token);
}
