/**
 * The PROXY protocol at the pipeline's edges (haproxy's doc/proxy-protocol.txt; the bytes are
 * src/proxy-protocol/'s):
 * - accept side (listener `acceptProxyProtocol: { from }`): a peer in `from` must open with a
 *   header before anything else, and its source is the client from then on (gate, routing, logs,
 *   the resolver, XCLIENT, the header sent on);
 * - dial side (route `proxyProtocol`): the header written to the upstream before any other byte.
 *
 * The pipeline (src/proxy/pipeline.ts) calls in here only on listeners with acceptProxyProtocol
 * and routes with proxyProtocol, so no other connection pays anything. What happens next is the
 * pipeline's: this file answers with named outcomes.
 * @module
 */
import type { Socket } from "bun";
import { type Conn, FINISHED, HANDSHAKING, READING_PROXY_HEADER } from "./conn.ts";
import { parseIp, type CidrSet, type IpAddress } from "../net/ip.ts";
import { ByteQueue } from "../net/byte-queue.ts";
import { encodeProxyHeader, type ProxyEndpoint, type ProxyProtocolVersion } from "../proxy-protocol/encode.ts";
import { parseProxyHeader, type ReceivedEndpoint } from "../proxy-protocol/parse.ts";

// ─── accept side ─────────────────────────────────────────────────────────────────────────────────

export type ProxyHeaderOutcome =
  | { readonly kind: "need-more" }
  /** The header was read; `rest` are the client's first bytes that came with it (maybe none). */
  | { readonly kind: "read"; readonly rest: Uint8Array }
  | { readonly kind: "refuse"; readonly reason: "bad_proxy_header"; readonly detail: string };

const NEED_MORE = { kind: "need-more" } as const;

/**
 * A header's bytes so far, for the few connections whose header does not come in one read: a
 * header is at most 4 KiB (src/proxy-protocol/parse.ts) and need-more is answered only below that,
 * so what is held is that plus one read.
 */
const partial = new WeakMap<Conn, ByteQueue>();
const PARTIAL_LIMIT = 1024 * 1024;

/** The address a trusted proxy's client connected to, kept for a PROXY header sent on. */
const destinations = new WeakMap<Conn, ReceivedEndpoint>();

/** accept: whether the peer is one of the listener's trusted proxies (it must send a header). */
export function fromTrustedProxy(conn: Conn, from: CidrSet): boolean {
  const ip = parseIp(conn.clientIp);
  return ip !== null && from.contains(ip);
}

/** Wait for the header: the socket reads, and handshakeTimeoutMs bounds the wait (the sweeper). */
export function awaitProxyHeader(conn: Conn): void {
  conn.flags |= READING_PROXY_HEADER | HANDSHAKING;
  conn.client.resume();
}

/** Whether `conn` is still waiting for its header (the pipeline's handlers ask it per read until then). */
export const awaitingProxyHeader = (conn: Conn): boolean => (conn.flags & (READING_PROXY_HEADER | FINISHED)) === READING_PROXY_HEADER;

/** A chunk from a trusted proxy while its header is awaited. */
export function proxyHeaderData(conn: Conn, chunk: Uint8Array): ProxyHeaderOutcome {
  conn.lastActive = performance.now();
  let held = partial.get(conn);
  let bytes = chunk;
  if (held) {
    if (!held.push(chunk)) return { kind: "refuse", reason: "bad_proxy_header", detail: "v2_too_long" };
    bytes = held.bytes();
  }
  const step = parseProxyHeader(bytes);
  switch (step.kind) {
    case "need-more":
      if (!held) {
        partial.set(conn, (held = new ByteQueue(PARTIAL_LIMIT, "bad_proxy_header")));
        held.push(chunk);
      }
      return NEED_MORE;
    case "error":
      partial.delete(conn);
      return { kind: "refuse", reason: "bad_proxy_header", detail: step.reason };
    case "header":
      partial.delete(conn);
      conn.flags &= ~READING_PROXY_HEADER;
      // UNKNOWN, LOCAL (a health check), AF_UNSPEC or unix: the connection is the proxy's own.
      if (step.src !== null) {
        conn.clientIp = step.src.ip;
        conn.clientPort = step.src.port;
      }
      if (step.dst !== null) destinations.set(conn, step.dst);
      return { kind: "read", rest: bytes.subarray(step.length) };
  }
}

/** Why a connection that ended while its header was awaited closed. */
export function endedBeforeProxyHeader(conn: Conn): "incomplete_proxy_header" | "client_closed" {
  return partial.has(conn) ? "incomplete_proxy_header" : "client_closed";
}

// ─── dial side ───────────────────────────────────────────────────────────────────────────────────

/**
 * connected, first of all: write the header for the client and the address it connected to (a
 * trusted proxy's header's, when there was one). A short write (a fresh socket takes ~50 bytes at
 * once, but the kernel owes us nothing) queues the rest in front of whatever waits for the
 * upstream, which is flushed before anything else.
 */
export function writeProxyHeader(conn: Conn, upstream: Socket<Conn>, version: ProxyProtocolVersion): void {
  const accepted = conn.intake?.raw ?? conn.client; // under a terminated TLS socket, the accepted one knows the addresses
  const received = destinations.get(conn);
  const dst = received ? { ip: received.address, port: received.port } : endpoint(accepted.localAddress, accepted.localPort);
  const header = encodeProxyHeader(version, endpoint(conn.clientIp, conn.clientPort), dst);
  const n = upstream.write(header);
  if (n >= 0 && n < header.length) conn.upQueue().unshift(header.subarray(n));
}

/** An address and port as the encoder takes them; null for a unix socket (no IP). */
function endpoint(ip: string | undefined, port: number | undefined): ProxyEndpoint | null {
  const parsed: IpAddress | null = ip ? parseIp(ip) : null;
  return parsed === null ? null : { ip: parsed, port: port ?? 0 };
}
