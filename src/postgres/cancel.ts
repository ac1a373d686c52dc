/**
 * CancelRequest routing. A client cancels a query by opening a new connection and sending the
 * process id and secret key its backend gave it (BackendKeyData); the proxy must send that to the
 * same backend. So the upstream handlers of postgres listeners read the backend's first messages
 * (authentication, ParameterStatus, BackendKeyData, ReadyForQuery) as they pass, remember which
 * backend address issued which key, and stop looking at ReadyForQuery. Bounded: at most
 * {@link MAX_STARTUP_REPLY} bytes are watched per connection, at most {@link MAX_KEYS} keys are kept
 * (finished connections' keys are dropped first).
 * https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-CANCELING-REQUESTS
 * @module
 */
import type { Socket, SocketHandler } from "bun";
import { Conn, FINISHED } from "../proxy/conn.ts";
import { UPSTREAM_HANDLERS } from "../relay/userspace.ts";
import { abort } from "../proxy/finish.ts";
import { newStartupQueue, readStartupReplies, type BackendKey } from "./backend-startup.ts";
import type { PgState } from "./state.ts";

export const MAX_KEYS = 65_536;

interface KeyOwner {
  readonly conn: Conn;
  readonly host: string;
  readonly port: number;
}

/** "pid:keyhex" → the backend that issued it. */
const owners = new Map<string, KeyOwner>();

function keyOf(pid: number, key: Uint8Array): string {
  return `${pid}:${Buffer.from(key).toString("hex")}`;
}

const upstreamData = UPSTREAM_HANDLERS.data!;

/** The relay's upstream handlers, reading the backend's startup replies as they pass (ProtocolModule.upstreamHandlers). */
export const PG_UPSTREAM_HANDLERS: Omit<SocketHandler<Conn>, "open"> = {
  ...UPSTREAM_HANDLERS,
  data(upstream, chunk) {
    const conn = upstream.data;
    const state = conn.intake!.state as PgState;
    // Per read: one field test once the startup replies have passed (no map lookup).
    if (state.watchingBackend && !(conn.flags & FINISHED)) watch(conn, state, upstream, chunk);
    upstreamData(upstream, chunk);
  },
};

function watch(conn: Conn, state: PgState, upstream: Socket<Conn>, chunk: Uint8Array): void {
  const pending = (state.backendPending ??= newStartupQueue());
  // Past the bound this is not a startup exchange we can read: stop looking (the relay goes on).
  if (!pending.push(chunk)) return stopWatching(state);
  const r = readStartupReplies(pending);
  if (r.key) remember(keyText(r.key), { conn, host: upstream.remoteAddress, port: upstream.remotePort });
  if (r.kind !== "need-more") stopWatching(state);
}

function keyText(k: BackendKey): string {
  return keyOf(k.pid, k.secret);
}

function stopWatching(state: PgState): void {
  state.watchingBackend = false;
  state.backendPending = null;
}

function remember(key: string, owner: KeyOwner): void {
  if (owners.size >= MAX_KEYS) {
    for (const [k, o] of owners) if (o.conn.flags & FINISHED) owners.delete(k);
    // Still full: the oldest keys go (their sessions are the likeliest to have ended).
    for (const k of owners.keys()) {
      if (owners.size < MAX_KEYS) break;
      owners.delete(k);
    }
  }
  owners.set(key, owner);
}

interface CancelData { bytes: Uint8Array }

const CANCEL_HANDLERS: SocketHandler<CancelData> = {
  open(s) {
    s.end(s.data.bytes);
  },
  data() {},
  connectError() {},
};

/**
 * Where a CancelRequest goes when this process does not know its key: with workers, the session may
 * live in another worker (SO_REUSEPORT spreads a client's connections), so the worker hands the
 * request to its supervisor, which offers it to every other worker ({@link cancelIfOwned}). Null in
 * a single process.
 */
let askOtherWorkers: ((key: string, message: Uint8Array) => void) | null = null;

export function onUnknownCancelKey(ask: (key: string, message: Uint8Array) => void): void {
  askOtherWorkers = ask;
}

/**
 * Send a CancelRequest to the backend that issued the key, then close the client connection, as a
 * server does (it never answers a CancelRequest). An unknown key is dropped silently, after the
 * other workers were offered it.
 */
export function forwardCancel(conn: Conn, pid: number, key: Uint8Array, message: Uint8Array): void {
  const text = keyOf(pid, key);
  const owner = owners.get(text);
  if (owner && !(owner.conn.flags & FINISHED)) {
    conn.upstreamText = sendCancel(owner, message);
    conn.bytesIn += message.length; // sent on, as every relayed byte is counted
    return abort(conn, "cancel_forwarded");
  }
  if (!askOtherWorkers) return abort(conn, "cancel_unknown_key");
  askOtherWorkers(text, message);
  conn.bytesIn += message.length;
  abort(conn, "cancel_to_workers");
}

/** A CancelRequest another worker could not place: send it on if this process owns the key. */
export function cancelIfOwned(key: string, message: Uint8Array): boolean {
  const owner = owners.get(key);
  if (!owner || owner.conn.flags & FINISHED) return false;
  sendCancel(owner, message);
  return true;
}

function sendCancel(owner: KeyOwner, message: Uint8Array): string {
  Bun.connect<CancelData>({ hostname: owner.host, port: owner.port, socket: CANCEL_HANDLERS, data: { bytes: message.slice() } }).catch(() => {});
  return `${owner.host}:${owner.port}`;
}
