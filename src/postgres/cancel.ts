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
import type { ProtoState } from "../proxy/proto-state.ts";
import { UPSTREAM_HANDLERS } from "../relay/userspace.ts";
import { abort } from "../proxy/finish.ts";
import { concatBytes } from "../net/bytes.ts";

/** The backend's startup replies are small (about 400 bytes); SASL adds a few hundred. */
export const MAX_STARTUP_REPLY = 16 * 1024;
export const MAX_KEYS = 65_536;
// https://www.postgresql.org/docs/current/protocol-message-formats.html
const BACKEND_KEY_DATA = 0x4b; // 'K'
const READY_FOR_QUERY = 0x5a; // 'Z'
const ERROR_RESPONSE = 0x45; // 'E'

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

export const PG_UPSTREAM_HANDLERS: SocketHandler<Conn> = {
  ...UPSTREAM_HANDLERS,
  data(upstream, chunk) {
    const conn = upstream.data;
    // Per read: one field test once the startup replies have passed (no map lookup).
    if (conn.proto?.watchingBackend && !(conn.flags & FINISHED)) watch(conn, upstream, chunk);
    upstreamData(upstream, chunk);
  },
};

function watch(conn: Conn, upstream: Socket<Conn>, chunk: Uint8Array): void {
  const p = conn.proto!;
  const before = p.backendTail;
  const bytes = before ? concatBytes(before, chunk) : chunk;
  let pos = 0;
  while (pos + 5 <= bytes.length) {
    const type = bytes[pos]!;
    const len = ((bytes[pos + 1]! << 24) >>> 0) + (bytes[pos + 2]! << 16) + (bytes[pos + 3]! << 8) + bytes[pos + 4]!;
    if (len < 4 || pos + 1 + len > bytes.length) break;
    if (type === BACKEND_KEY_DATA && len >= 12) {
      const body = bytes.subarray(pos + 5, pos + 1 + len);
      const pid = ((body[0]! << 24) >>> 0) + (body[1]! << 16) + (body[2]! << 8) + body[3]!;
      remember(keyOf(pid, body.subarray(4)), { conn, host: upstream.remoteAddress, port: upstream.remotePort });
    }
    if (type === READY_FOR_QUERY || type === ERROR_RESPONSE) return stopWatching(p);
    pos += 1 + len;
  }
  const rest = bytes.subarray(pos);
  if (rest.length > MAX_STARTUP_REPLY) return stopWatching(p);
  p.backendTail = rest.length > 0 ? rest.slice() : null;
}

function stopWatching(p: ProtoState): void {
  p.watchingBackend = false;
  p.backendTail = null;
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
