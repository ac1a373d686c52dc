/**
 * The access-log record of one HTTP request (SPEC.md "Access log": HTTP listeners write one record
 * per request, with method, host, path, status, upstreamMs and reused besides the connection's
 * fields). `reason` is the exchange's outcome: "done", or the reason code the proxy's own answer
 * named ("no_route", the parser's reasons, "connect_failed", "upstream_timeout", …); bytesIn and
 * bytesOut are this request's (its head and body) and its response's.
 * @module
 */
import type { AccessRecord } from "../log/access-log.ts";
import { logFields } from "../protocol/facts.ts";
import { connLogId } from "../proxy/conn-id.ts";
import type { HttpSession } from "./session.ts";

/** The HTTP fields of a record, beside AccessRecord's. */
export interface HttpRecordFields {
  method: string;
  host: string;
  path: string;
  status: number;
  upstreamMs: number | null;
  reused: boolean;
}

export function logExchange(s: HttpSession): void {
  const conn = s.conn;
  const log = conn.listener.state.accessLog;
  if (!log) return;
  const facts = conn.facts!;
  const record: AccessRecord & HttpRecordFields = {
    ts: new Date().toISOString(), id: connLogId(conn.id), listener: conn.listener.config.name, route: s.route?.config.name ?? null,
    client: `${conn.clientIp}:${conn.clientPort}`, upstream: conn.upstreamText, upstreamAddr: conn.upstreamAddr,
    protocol: conn.listener.config.protocol, ...logFields(facts), relay: null,
    bytesIn: conn.bytesIn - s.bytesInBefore, bytesOut: conn.bytesOut - s.bytesOutBefore, durationMs: Math.round(performance.now() - s.requestStart), reason: s.outcome,
    method: s.method, host: facts.host ?? "", path: facts.path ?? "", status: s.status,
    upstreamMs: s.upstreamMs === null ? null : Math.round(s.upstreamMs * 10) / 10, reused: s.reused,
  };
  log.write(record);
}
