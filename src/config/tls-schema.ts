/**
 * The TLS and PostgreSQL keys of the schema (listener: defaultCert, certDir, mtls, protection's TLS
 * keys; route: terminateTls, cert, mtls, upstreamTls; match: sni, alpn, database, user), kept apart
 * from src/config/schema.ts so the protocols that need them compose rather than grow one function.
 * Files are not read here: certificates are loaded (and their failures reported) by src/tls/certs.ts.
 * @module
 */
import type { JsonPath } from "./jsonc.ts";
import type { ConfigReader, Obj } from "./reader.ts";
import type { CertPaths, MtlsConfig, Protocol, TlsProtection, UpstreamTlsConfig } from "./types.ts";

const JA3 = /^[0-9a-f]{32}$/;
const JA4 = /^[tqd][0-9s][0-9a-z][di][0-9]{2}[0-9]{2}[0-9a-z]{2}_[0-9a-f]{12}_[0-9a-f]{12}$/;

/** Protocols whose listeners load certificates (smtp: offered with STARTTLS; mysql: after an SSLRequest). */
export const TLS_PROTOCOLS: readonly Protocol[] = ["tls", "postgres", "smtp", "mysql"];
/** Protocols whose routing facts are inside TLS, so TLS ends on the listener before any route is known. */
const TLS_BEFORE_ROUTING: readonly Protocol[] = ["postgres", "mysql"];
/** Of those, the protocols whose route may ask for TLS to the server (MySQL: an SSLRequest after its greeting). */
const UPSTREAM_TLS_BUILT: readonly Protocol[] = ["mysql"];

/** `protection` is the listener's protection object, already key-checked by the schema. */
export function readTlsListener(r: ConfigReader, o: Obj, path: JsonPath, protocol: Protocol, protection: Obj) {
  const tlsKeys = ["defaultCert", "certDir", "mtls"].filter((k) => k in o);
  if (!TLS_PROTOCOLS.includes(protocol)) for (const k of tlsKeys) r.fail([...path, k], `${k} needs protocol "tls", "postgres", "smtp" or "mysql" (this listener is "${protocol}")`);
  return {
    defaultCert: o.defaultCert === undefined ? null : readCert(r, o.defaultCert, [...path, "defaultCert"]),
    certDir: r.string(o, "certDir", path) ?? null,
    mtls: o.mtls === undefined ? null : readMtls(r, o.mtls, [...path, "mtls"]),
    tlsProtection: readTlsProtection(r, protection, [...path, "protection"]),
  };
}

/** The TLS keys of `protection` (the gate's keys are read by src/protect/config.ts). */
export function readTlsProtection(r: ConfigReader, o: Obj, path: JsonPath): TlsProtection {
  return {
    ja3Blocklist: r.stringList(o, "ja3Blocklist", path, (s) => JA3.test(s) ? null : "a JA3 fingerprint is 32 lower-case hex digits (the MD5)"),
    ja4Blocklist: r.stringList(o, "ja4Blocklist", path, (s) => JA4.test(s) ? null : 'a JA4 fingerprint looks like "t13d1516h2_8daaf6152771_e5627efa2ab1"'),
    requireSni: r.boolean(o, "requireSni", path, false),
  };
}

export function readTlsRoute(r: ConfigReader, o: Obj, path: JsonPath, protocol: Protocol) {
  const early = TLS_BEFORE_ROUTING.includes(protocol);
  const terminateTls = r.boolean(o, "terminateTls", path, early);
  for (const k of ["terminateTls", "cert", "mtls", "upstreamTls"]) {
    if (k in o && !TLS_PROTOCOLS.includes(protocol)) r.fail([...path, k], `${k} needs protocol "tls" or "postgres" (this listener is "${protocol}")`);
  }
  if (TLS_PROTOCOLS.includes(protocol) && o.respond !== undefined) r.fail([...path, "respond"], `respond answers plain HTTP, which a "${protocol}" listener's clients do not speak`);
  const first = protocol === "postgres" ? "startup message" : "handshake response";
  const server = protocol === "postgres" ? "PostgreSQL" : "MySQL";
  if (early && o.terminateTls === false) r.fail([...path, "terminateTls"], `a ${protocol} listener routes on the ${first}, which it can only read after terminating TLS`);
  if (early) {
    for (const k of ["cert", "mtls", "upstreamTls"]) {
      if (k === "upstreamTls" && UPSTREAM_TLS_BUILT.includes(protocol)) continue;
      if (k in o) r.fail([...path, k], `a ${protocol} listener ends TLS before the route is known (the database is inside TLS): set ${k === "cert" ? "defaultCert or certDir" : k === "mtls" ? "mtls" : `nothing: TLS to ${server} servers is not built`}${k === "upstreamTls" ? "" : " on the listener"}`);
    }
  }
  const cert = o.cert === undefined ? null : readCert(r, o.cert, [...path, "cert"]);
  const mtls = o.mtls === undefined ? null : readMtls(r, o.mtls, [...path, "mtls"]);
  const upstreamTls = o.upstreamTls === undefined ? null : readUpstreamTls(r, o.upstreamTls, [...path, "upstreamTls"]);
  if (!terminateTls) {
    for (const [k, v] of [["cert", cert], ["mtls", mtls], ["upstreamTls", upstreamTls]] as const) {
      if (v) r.fail([...path, k], `${k} applies to a route that terminates TLS (set "terminateTls": true)`);
    }
  }
  return { terminateTls, cert, mtls, upstreamTls };
}

/** match.sni, alpn, database, user: a string or a list of strings. */
export function readProtocolMatch(r: ConfigReader, o: Obj, path: JsonPath) {
  return {
    sni: r.stringList(o, "sni", path, sniProblem).map(normaliseName),
    alpn: r.stringList(o, "alpn", path, (s) => s.length > 0 && s.length < 256 ? null : "an ALPN protocol is 1 to 255 characters"),
    database: r.stringList(o, "database", path, (s) => s.length > 0 ? null : "empty database name"),
    user: r.stringList(o, "user", path, (s) => s.length > 0 ? null : "empty user name"),
  };
}

/** Lower case, no trailing dot: the form the ClientHello sniffer reports names in. */
export function normaliseName(name: string): string {
  const lower = name.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

function sniProblem(s: string): string | null {
  if (s === "") return null;
  const name = s.startsWith("*.") ? s.slice(2) : s;
  if (name.includes("*")) return `only a leading "*." wildcard is supported: "${s}"`;
  if (!/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*\.?$/.test(name)) return `not a server name: "${s}"`;
  return null;
}


function readCert(r: ConfigReader, value: unknown, path: JsonPath): CertPaths | null {
  const o = r.object(value, path, ["cert", "key"]);
  if (!o) return null;
  const cert = r.string(o, "cert", path);
  const key = r.string(o, "key", path);
  if (cert === undefined || key === undefined) return r.fail(path, "a certificate needs both cert and key (file paths)") ?? null;
  return { cert, key };
}

function readMtls(r: ConfigReader, value: unknown, path: JsonPath): MtlsConfig | null {
  const o = r.object(value, path, ["ca", "requireClientCert"]);
  if (!o) return null;
  const ca = r.string(o, "ca", path);
  if (ca === undefined) return r.fail(path, "mtls needs ca (a file of CA certificates)") ?? null;
  return { ca, requireClientCert: r.boolean(o, "requireClientCert", path, true) };
}

function readUpstreamTls(r: ConfigReader, value: unknown, path: JsonPath): UpstreamTlsConfig | null {
  const o = r.object(value, path, ["serverName", "ca", "verify"]);
  if (!o) return null;
  return { serverName: r.string(o, "serverName", path) ?? null, ca: r.string(o, "ca", path) ?? null, verify: r.boolean(o, "verify", path, true) };
}

/** A tls route that terminates needs a certificate from somewhere: its own, defaultCert or certDir. */
export function checkTlsCertificates(r: ConfigReader, listener: Obj, path: JsonPath, routes: readonly { readonly terminateTls: boolean; readonly cert: CertPaths | null }[], protocol: Protocol): void {
  if (protocol !== "tls" || listener.defaultCert !== undefined || listener.certDir !== undefined) return;
  routes.forEach((route, i) => {
    if (route.terminateTls && !route.cert) r.fail([...path, "routes", i], "this route terminates TLS but has no cert, and the listener has neither defaultCert nor certDir");
  });
}
