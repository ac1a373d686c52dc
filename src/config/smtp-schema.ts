/**
 * The SMTP keys of the schema (SPEC.md "Protocols beyond TCP and TLS"): the listener's `smtp`
 * object, the route's `xclient`, and `match.ehlo` / `match.rcptDomain` (domain patterns). Kept
 * apart from src/config/schema.ts as the TLS keys are (src/config/tls-schema.ts).
 * @module
 */
import { hostname } from "node:os";
import type { JsonPath } from "./jsonc.ts";
import type { ConfigReader, Obj } from "./reader.ts";
import type { Protocol, SmtpListenerConfig } from "./types.ts";

const SMTP_KEYS = ["hostname", "maxMessageBytes", "requireTls", "smtpUtf8", "maxCommandsBeforeRouting", "commandTimeoutMs", "dataTimeoutMs"];

/** 50 MiB, the size SPEC.md's example offers (and a common MTA default). */
export const DEFAULT_MAX_MESSAGE_BYTES = 52_428_800;
/** handshakeTimeoutMs of smtp listeners: banner to first RCPT (RFC 5321 §4.5.3.2.7: 5 minutes a command). */
export const SMTP_HANDSHAKE_TIMEOUT_MS = 300_000;
/** RFC 5321 §4.5.3.2.7: "An SMTP server SHOULD have a timeout of at least 5 minutes while it is awaiting the next command". */
export const DEFAULT_COMMAND_TIMEOUT_MS = 300_000;
/** RFC 5321 §4.5.3.2.5: 3 minutes for each block of message data. */
export const DEFAULT_DATA_TIMEOUT_MS = 180_000;
/**
 * idleTimeoutMs of smtp listeners: above the command and data timeouts, so that they, and their
 * 421, come first; it still bounds a stalled backend (RFC 5321 §4.5.3.2.6: a client waits 10
 * minutes for the reply to the end of DATA).
 */
export const SMTP_IDLE_TIMEOUT_MS = 600_000;
/** Enough for EHLO, STARTTLS, EHLO and a handful of NOOP/RSET; a client past it is not mailing. */
export const DEFAULT_MAX_COMMANDS_BEFORE_ROUTING = 50;

/** The listener's `smtp` settings (defaults filled in), or null with an issue when set on another protocol. */
export function readSmtpListener(r: ConfigReader, o: Obj, path: JsonPath, protocol: Protocol): SmtpListenerConfig | null {
  if (protocol !== "smtp") {
    if (o.smtp !== undefined) r.fail([...path, "smtp"], `smtp needs protocol "smtp" (this listener is "${protocol}")`);
    return null;
  }
  const at = [...path, "smtp"];
  const s = o.smtp === undefined ? {} : (r.object(o.smtp, at, SMTP_KEYS) ?? {});
  const name = r.string(s, "hostname", at, hostname() || "localhost");
  if (!/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(name)) {
    r.fail([...at, "hostname"], `not a host name: "${name}" (it goes into the 220 banner)`);
  }
  return {
    hostname: name,
    maxMessageBytes: r.integer(s, "maxMessageBytes", at, DEFAULT_MAX_MESSAGE_BYTES, 1, 2 ** 40),
    requireTls: r.boolean(s, "requireTls", at, false),
    smtpUtf8: r.boolean(s, "smtpUtf8", at, false),
    maxCommandsBeforeRouting: r.integer(s, "maxCommandsBeforeRouting", at, DEFAULT_MAX_COMMANDS_BEFORE_ROUTING, 1, 10_000),
    commandTimeoutMs: r.integer(s, "commandTimeoutMs", at, DEFAULT_COMMAND_TIMEOUT_MS, 1, 86_400_000),
    dataTimeoutMs: r.integer(s, "dataTimeoutMs", at, DEFAULT_DATA_TIMEOUT_MS, 1, 86_400_000),
  };
}

/**
 * The route's SMTP keys. TLS on an smtp listener is STARTTLS with the listener's certificate, ended
 * before routing; the route-level TLS keys (terminateTls, cert, mtls, upstreamTls) are refused.
 */
export function readSmtpRoute(r: ConfigReader, o: Obj, path: JsonPath, protocol: Protocol): { xclient: boolean } {
  if (protocol !== "smtp") {
    if (o.xclient !== undefined) r.fail([...path, "xclient"], `xclient needs protocol "smtp" (this listener is "${protocol}")`);
    return { xclient: false };
  }
  for (const k of ["terminateTls", "cert", "mtls", "upstreamTls"]) {
    if (k in o) r.fail([...path, k], `an smtp listener ends TLS itself (STARTTLS, with the listener's defaultCert or certDir): ${k} on a route is not built`);
  }
  if (o.respond !== undefined) r.fail([...path, "respond"], "respond answers plain HTTP, which SMTP clients do not speak");
  return { xclient: r.boolean(o, "xclient", path, false) };
}

/** match.ehlo and match.rcptDomain: domains, exact or "*.suffix" (one label), normalised to lower case. */
export function readSmtpMatch(r: ConfigReader, o: Obj, path: JsonPath): { ehlo: string[]; rcptDomain: string[] } {
  return { ehlo: readDomains(r, o, "ehlo", path), rcptDomain: readDomains(r, o, "rcptDomain", path) };
}

function readDomains(r: ConfigReader, o: Obj, key: string, path: JsonPath): string[] {
  const out = r.stringList(o, key, path, domainPatternProblem).map((d) => d.toLowerCase().replace(/\.$/, ""));
  if (Array.isArray(o[key]) && (o[key] as unknown[]).length === 0) r.fail([...path, key], `${key} is empty: it would match nothing (leave it out to match any)`);
  return out;
}

function domainPatternProblem(item: string): string | null {
  const lower = item.toLowerCase().replace(/\.$/, "");
  const name = lower.startsWith("*.") ? lower.slice(2) : lower;
  return /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(name) ? null : `not a domain or "*.domain" pattern: "${item}"`;
}
