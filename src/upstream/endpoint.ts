/**
 * From an endpoint text to the address to dial. DNS names are looked up here, and the address
 * actually dialled is checked against SSRF rules (src/upstream/ssrf.ts) unless the endpoint is
 * trusted: an IP literal or `localhost` written by the operator (SPEC.md: endpoints chosen at run
 * time, and DNS names whose answers can change, are checked).
 * @module
 */
import { formatSocketAddress, parseSocketAddress } from "../net/address.ts";
import { checkDialAddress } from "./ssrf.ts";

export type DialTarget =
  | { readonly kind: "inet"; readonly ip: string; readonly port: number }
  | { readonly kind: "unix"; readonly path: string };

export type EndpointResult = { ok: true; target: DialTarget } | { ok: false; reason: string; detail: string };

export interface EndpointPolicy {
  /** The operator wrote this endpoint (flags or config), not a resolver module. */
  readonly fromOperator: boolean;
  /** The listener opted out of validation (skipValidation / *_SKIP_VALIDATION). */
  readonly skipValidation: boolean;
}

export type Lookup = (host: string) => Promise<string>;

/** Resolve with Bun's resolver: the first answer, as an address string. */
export const systemLookup: Lookup = async (host) => {
  const answers = await Bun.dns.lookup(host, {});
  if (!answers[0]) throw new Error(`no address for ${host}`);
  return answers[0].address;
};

/**
 * The dial target for an endpoint without DNS: a unix path or an IP literal, checked. Returns null
 * for a DNS name (use {@link resolveEndpoint}), so literal endpoints need no promise per connection.
 */
export function literalEndpoint(text: string, policy: EndpointPolicy): EndpointResult | null {
  const a = parseSocketAddress(text);
  if (typeof a === "string") return { ok: false, reason: "bad_endpoint", detail: a };
  if (a.kind === "unix") {
    // A unix path is local by definition; only the operator may name one.
    if (!policy.fromOperator && !policy.skipValidation) return { ok: false, reason: "ssrf_blocked", detail: `unix socket ${a.path} from a resolver` };
    return { ok: true, target: { kind: "unix", path: a.path } };
  }
  if (!a.literal) return null;
  return checked(a.host, a.port, policy.skipValidation || policy.fromOperator);
}

/** The address a target dials, as the access log's `upstreamAddr` says it: `ip:port`, `[v6]:port` or `unix:/path`. */
export function dialTargetText(target: DialTarget): string {
  return formatSocketAddress(target.kind === "inet" ? { kind: "inet", host: target.ip, port: target.port, literal: true } : target);
}

/** Any endpoint: literals as above, DNS names looked up and the answer checked. */
export async function resolveEndpoint(text: string, policy: EndpointPolicy, lookup: Lookup = systemLookup): Promise<EndpointResult> {
  const literal = literalEndpoint(text, policy);
  if (literal) return literal;
  const a = parseSocketAddress(text) as { host: string; port: number };
  let ip: string;
  try {
    ip = await lookup(a.host);
  } catch (e) {
    return { ok: false, reason: "dns_failed", detail: `${a.host}: ${(e as Error).message}` };
  }
  // `localhost` always means this host (RFC 6761), so the operator's `localhost` stays trusted.
  return checked(ip, a.port, policy.skipValidation || (policy.fromOperator && a.host === "localhost"));
}

function checked(ip: string, port: number, trusted: boolean): EndpointResult {
  if (!trusted) {
    const check = checkDialAddress(ip);
    if (!check.allowed) return { ok: false, reason: "ssrf_blocked", detail: `${ip} is in ${check.range || "?"} (${check.name})` };
  }
  return { ok: true, target: { kind: "inet", ip, port } };
}
