/**
 * The `http` protocol (HTTP/1.1 reverse proxy). HTTP routes per request, not per connection, so after
 * the sniff stage the module owns the connection (ProtocolModule.serve) and runs the request loop of
 * src/http/session.ts: each request is routed by the listener's table on host/path/method, forwarded
 * over a pooled upstream connection, or answered here.
 *
 * - sniff: the first request head (parse-head.ts, resumed as bytes come); its host, path and method
 *   go into conn.facts; a malformed head is a counted refusal, answered with its status (farewell).
 * - serve: the session takes the bytes collected and the parsed head, and the client socket.
 * - farewell: before the session, the refusal's status (400, 431, 501, 505…; 408 for a head slower
 *   than handshakeTimeoutMs).
 * The session asks the resolver module per request when there is one (src/http/resolve-request.ts).
 * Upgrades on proxy routes become a relay after the upstream's 101 (src/http/tunnel.ts).
 * Not built yet: CONNECT (501), `serve` (static files), plugins.
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import type { ByteQueue } from "../net/byte-queue.ts";
import type { HttpListenerConfig } from "../config/types.ts";
import { NEED_MORE, ROUTE, refuse, type ProtocolModule, type SniffStep } from "../protocol/module.ts";
import type { RequestHead } from "./head.ts";
import { takeRequestHead } from "./head-pool.ts";
import { parseRequestHead } from "./parse-head.ts";
import type { HeadError } from "./reasons.ts";
import { errorResponse } from "./answers.ts";
import { HttpSession } from "./session.ts";
import { countExchange } from "./request-metrics.ts";
import { normaliseHost } from "../route/host-pattern.ts";
import { HTTP_DEFAULTS } from "../config/http-schema.ts";

/** The module's per-connection state (conn.intake.state). */
class HttpIntake {
  /** The first request's head, until the session takes it over. */
  head: RequestHead | null;
  resume = 0;
  /** Why the first head was refused, for farewell. */
  error: HeadError | null = null;
  /** Set once the module owns the connection. */
  session: HttpSession | null = null;
  /** Retired before the session started (the first head was still being read). */
  retiring = false;

  constructor(readonly config: HttpListenerConfig) {
    this.head = takeRequestHead(config);
  }
}

const DEFAULT_CONFIG: HttpListenerConfig = {
  maxHeaderBytes: HTTP_DEFAULTS.maxHeaderBytes, maxHeaders: HTTP_DEFAULTS.maxHeaders, headerTimeoutMs: HTTP_DEFAULTS.headerTimeoutMs,
  keepAliveTimeoutMs: HTTP_DEFAULTS.keepAliveTimeoutMs, forwarded: "append", trustedProxies: [],
};

function intakeOf(conn: Conn): HttpIntake {
  return conn.intake!.state as HttpIntake;
}

/** Reasons of the pipeline's own refusals before the session, as HTTP statuses. */
const PIPELINE_REFUSALS: Record<string, number> = { handshake_timeout: 408, first_bytes_too_long: 431 };

export const HTTP: ProtocolModule = {
  name: "http",
  speaksFirst: "client",

  newState(conn: Conn): object {
    return new HttpIntake(conn.listener.config.http ?? DEFAULT_CONFIG);
  },

  sniff(conn: Conn, collected: ByteQueue): SniffStep {
    const state = intakeOf(conn);
    const r = parseRequestHead(collected.bytes(), 0, state.head!, state.resume);
    if (r.kind === "need-more") {
      state.resume = r.resume;
      return NEED_MORE; // the head's own limit (maxHeaderBytes ≤ the collector's bound) ends this first
    }
    if (r.kind === "error") {
      state.error = r;
      return refuse(r.reason);
    }
    const facts = conn.facts!;
    facts.method = r.method;
    facts.host = normaliseHost(r.host());
    facts.path = r.path();
    return ROUTE;
  },

  serve: {
    logsEachMessage: true, // one record per request (src/http/exchange-log.ts)
    start(conn: Conn): void {
      const state = intakeOf(conn);
      const session = new HttpSession(conn, state.config, state.head!);
      state.head = null; // the session's now: it gives it back while the connection is idle
      state.session = session;
      session.retiring = state.retiring;
      const first = conn.intake!.first;
      const bytes = first.bytes();
      first.clear();
      session.start(bytes);
    },
    data(conn: Conn, chunk: Uint8Array): void {
      intakeOf(conn).session?.clientData(chunk);
    },
    drain(conn: Conn): void {
      intakeOf(conn).session?.clientDrain();
    },
    end(conn: Conn): void {
      intakeOf(conn).session?.clientEnd();
    },
    close(conn: Conn): void {
      intakeOf(conn).session?.clientClosed();
    },
    retire(conn: Conn): void {
      const state = intakeOf(conn);
      if (state.session) state.session.retire();
      else state.retiring = true; // the first request is answered, then the connection ends
    },
  },

  farewell(conn: Conn, reason: string): Uint8Array | null {
    const state = intakeOf(conn);
    if (state.session) return null;
    const status = state.error?.status ?? PIPELINE_REFUSALS[reason];
    if (status === undefined) return null;
    countExchange(conn.listener, null, false, status, null); // a request refused before the session: counted as answered
    return errorResponse(status, reason, true);
  },
};
