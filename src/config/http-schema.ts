/**
 * The HTTP keys of the schema (SPEC.md "Protocols beyond TCP and TLS"): a listener's `http` object,
 * a route's `pool`, `timeoutMs`, `redirect`, `drop`, `headers`, `respond.headers`, and
 * `match.host`/`path`/`method`. Kept apart from src/config/schema.ts as tls-schema.ts is. Keys of HTTP
 * features not built yet (`serve`, `plugins`) are refused as such, never ignored.
 * @module
 */
import { parseCidr, type Cidr } from "../net/ip.ts";
import type { JsonPath } from "./jsonc.ts";
import type { ConfigReader, Obj } from "./reader.ts";
import type { HeaderEdits, HttpListenerConfig, HttpRouteConfig, Protocol, RespondConfig } from "./types.ts";
import { hostPatternProblem, pathPatternProblem } from "../route/host-pattern.ts";
import { MAX_SNIFF_BYTES } from "../sniff/collect.ts";

export const HTTP_LISTENER_KEYS = ["http"];
export const HTTP_ROUTE_KEYS = ["pool", "timeoutMs", "redirect", "drop", "headers", "serve", "plugins"];
export const HTTP_MATCH_KEYS = ["host", "path", "method"];
const UNBUILT_HTTP_ROUTE_KEYS = ["serve", "plugins"];
const HTTP_KEYS = ["maxHeaderBytes", "maxHeaders", "headerTimeoutMs", "keepAliveTimeoutMs", "forwarded", "trustedProxies", "via", "notFound"];
const DAY_MS = 86_400_000;

export const HTTP_DEFAULTS = {
  maxHeaderBytes: 65_536,
  maxHeaders: 100,
  headerTimeoutMs: 10_000,
  keepAliveTimeoutMs: 60_000,
  maxIdle: 32,
  poolIdleTimeoutMs: 30_000,
  timeoutMs: 30_000,
} as const;

const METHOD = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** The listener's `http` object; undefined for other protocols (where the key is refused). */
export function readHttpListener(r: ConfigReader, o: Obj, path: JsonPath, protocol: Protocol): HttpListenerConfig | undefined {
  if (protocol !== "http") {
    if ("http" in o) r.fail([...path, "http"], `http needs protocol "http" (this listener is "${protocol}")`);
    return undefined;
  }
  const at = [...path, "http"];
  const h = o.http === undefined ? {} : (r.object(o.http, at, HTTP_KEYS) ?? {});
  const trustedProxies: Cidr[] = [];
  const list = h.trustedProxies === undefined ? [] : r.array(h.trustedProxies, [...at, "trustedProxies"]);
  list?.forEach((c, i) => {
    const cidr = typeof c === "string" ? parseCidr(c) : null;
    if (!cidr) r.fail([...at, "trustedProxies", i], `not an address range: ${JSON.stringify(c)} (expected e.g. "10.0.0.0/8")`);
    else trustedProxies.push(cidr);
  });
  return {
    // The first head is read by the sniff stage, whose collector holds at most MAX_SNIFF_BYTES.
    maxHeaderBytes: r.integer(h, "maxHeaderBytes", at, HTTP_DEFAULTS.maxHeaderBytes, 256, MAX_SNIFF_BYTES),
    maxHeaders: r.integer(h, "maxHeaders", at, HTTP_DEFAULTS.maxHeaders, 1, 10_000),
    headerTimeoutMs: r.integer(h, "headerTimeoutMs", at, HTTP_DEFAULTS.headerTimeoutMs, 1, DAY_MS),
    keepAliveTimeoutMs: r.integer(h, "keepAliveTimeoutMs", at, HTTP_DEFAULTS.keepAliveTimeoutMs, 0, DAY_MS),
    forwarded: r.oneOf(h, "forwarded", at, ["append", "replace", "off"] as const, "append"),
    trustedProxies,
    via: readVia(r, h.via, [...at, "via"]),
    notFound: h.notFound === undefined ? null : readNotFound(r, h.notFound, [...at, "notFound"]),
  };
}

/** A route's HTTP keys; undefined for other protocols (where they are refused). */
export function readHttpRoute(r: ConfigReader, o: Obj, path: JsonPath, protocol: Protocol): HttpRouteConfig | undefined {
  if (protocol !== "http") {
    for (const k of HTTP_ROUTE_KEYS) if (k in o) r.fail([...path, k], `${k} needs protocol "http" (this listener is "${protocol}")`);
    return undefined;
  }
  for (const k of UNBUILT_HTTP_ROUTE_KEYS) if (k in o) r.fail([...path, k], `${k} is not built yet in this version (see the status table in README.md)`);
  const p = o.pool === undefined ? {} : (r.object(o.pool, [...path, "pool"], ["maxIdle", "idleTimeoutMs"]) ?? {});
  let redirect: HttpRouteConfig["redirect"] = null;
  if (o.redirect !== undefined) {
    const d = r.object(o.redirect, [...path, "redirect"], ["status", "location"]);
    if (d) {
      const status = r.integer(d, "status", [...path, "redirect"], 302, 300, 399);
      const location = r.string(d, "location", [...path, "redirect"]);
      if (location === undefined) r.fail([...path, "redirect"], "redirect needs location");
      else redirect = { status, location };
    }
  }
  return {
    pool: {
      maxIdle: r.integer(p, "maxIdle", [...path, "pool"], HTTP_DEFAULTS.maxIdle, 0, 100_000),
      idleTimeoutMs: r.integer(p, "idleTimeoutMs", [...path, "pool"], HTTP_DEFAULTS.poolIdleTimeoutMs, 1, DAY_MS),
    },
    timeoutMs: r.integer(o, "timeoutMs", path, HTTP_DEFAULTS.timeoutMs, 1, DAY_MS),
    redirect,
    drop: r.boolean(o, "drop", path, false),
    headers: o.headers === undefined ? null : readHeaderEdits(r, o.headers, [...path, "headers"]),
  };
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** Printable ASCII, SP and HTAB (RFC 9110 §5.5 field-vchar without obs-text): what a configured value may hold. */
const FIELD_VALUE_TEXT = /^[\x20-\x7e\t]*$/;
/**
 * Fields a route may not set: the framing of the body as relayed (Content-Length, Transfer-Encoding)
 * and the hop-by-hop fields, which say how this connection is managed, not the message (RFC 9110 §7.6.1).
 */
const NOT_SETTABLE = new Set(["content-length", "transfer-encoding", "connection", "keep-alive", "proxy-connection", "te", "trailer", "upgrade"]);
/** Fields a route may not remove: framing stays as received, and an HTTP/1.1 request needs its Host. */
const NOT_REMOVABLE = new Set(["content-length", "transfer-encoding", "host"]);

/** `http.via`: a pseudonym (a token, RFC 9110 §7.6.3 received-by), written as `Via: 1.1 NAME`. */
function readVia(r: ConfigReader, value: unknown, path: JsonPath): string | null {
  if (value === undefined || value === false) return null;
  if (typeof value !== "string" || !TOKEN.test(value)) return r.fail(path, `via is a pseudonym such as "switchyard" (letters, digits, !#$%&'*+-.^_\`|~), got ${JSON.stringify(value)}`) ?? null;
  return value;
}

/** `http.notFound`: a body (string), or `{ status, contentType, headers, body }` as a respond route's. */
function readNotFound(r: ConfigReader, value: unknown, path: JsonPath): RespondConfig | null {
  if (typeof value === "string") return { status: 404, contentType: "text/plain; charset=utf-8", body: value };
  const o = r.object(value, path, ["status", "contentType", "headers", "body"]);
  if (!o) return null;
  const headers = readRespondHeaders(r, o.headers, [...path, "headers"]);
  return {
    status: r.integer(o, "status", path, 404, 400, 599),
    contentType: r.string(o, "contentType", path, "text/plain; charset=utf-8"),
    body: r.string(o, "body", path, ""),
    ...(headers.length > 0 ? { headers } : {}),
  };
}

/** A route's `headers`: `{ request: { set, remove }, response: { set, remove } }` (SPEC.md). */
function readHeaderEdits(r: ConfigReader, value: unknown, path: JsonPath): HttpRouteConfig["headers"] {
  const o = r.object(value, path, ["request", "response"]);
  if (!o) return null;
  return { request: readDirection(r, o.request, [...path, "request"]), response: readDirection(r, o.response, [...path, "response"]) };
}

function readDirection(r: ConfigReader, value: unknown, path: JsonPath): HeaderEdits {
  if (value === undefined) return { set: [], remove: [] };
  const o = r.object(value, path, ["set", "remove"]);
  if (!o) return { set: [], remove: [] };
  const set: [string, string][] = [];
  const setObj = o.set === undefined ? {} : (r.object(o.set, [...path, "set"], Object.keys((o.set ?? {}) as object)) ?? {});
  for (const [name, v] of Object.entries(setObj)) {
    const at = [...path, "set", name];
    if (!TOKEN.test(name)) r.fail(at, `not a field name: "${name}"`);
    else if (NOT_SETTABLE.has(name.toLowerCase())) r.fail(at, `${name} cannot be set by a route (body framing and hop-by-hop fields are the proxy's)`);
    else if (typeof v !== "string" || !FIELD_VALUE_TEXT.test(v)) r.fail(at, "a field value is a string of printable ASCII, spaces and tabs");
    else set.push([name, v.trim()]);
  }
  const remove: string[] = [];
  const list = o.remove === undefined ? [] : (r.array(o.remove, [...path, "remove"]) ?? []);
  list.forEach((name, i) => {
    const at = [...path, "remove", i];
    if (typeof name !== "string" || !TOKEN.test(name)) r.fail(at, `not a field name: ${JSON.stringify(name)}`);
    else if (NOT_REMOVABLE.has(name.toLowerCase())) r.fail(at, `${name} cannot be removed by a route (body framing stays as received; a request needs its Host)`);
    else remove.push(name.toLowerCase());
  });
  return { set, remove };
}

/** The actions a route written for an http listener has besides upstreams and respond. */
export function httpActionCount(route: HttpRouteConfig | undefined): number {
  return route ? (route.redirect ? 1 : 0) + (route.drop ? 1 : 0) : 0;
}

/** match.host, path, method (protocol "http" only). */
export function readHttpMatch(r: ConfigReader, o: Obj, path: JsonPath, protocol: Protocol) {
  if (protocol !== "http") {
    for (const k of HTTP_MATCH_KEYS) if (k in o) r.fail([...path, k], `match.${k} needs protocol "http" (this listener is "${protocol}")`);
    return {};
  }
  return {
    host: r.stringList(o, "host", path, hostPatternProblem),
    path: r.stringList(o, "path", path, pathPatternProblem),
    method: r.stringList(o, "method", path, (s) => METHOD.test(s) ? null : `not a method: "${s}"`),
  };
}

/** respond.headers: an object of field names to values. */
export function readRespondHeaders(r: ConfigReader, value: unknown, path: JsonPath): [string, string][] {
  if (value === undefined) return [];
  const o = r.object(value, path, Object.keys((value ?? {}) as object));
  const out: [string, string][] = [];
  if (o) for (const [k, v] of Object.entries(o)) {
    if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(k)) r.fail([...path, k], `not a field name: "${k}"`);
    else if (typeof v !== "string" || /[\r\n\0]/.test(v)) r.fail([...path, k], "a field value is a string without CR, LF or NUL");
    else out.push([k, v]);
  }
  return out;
}

