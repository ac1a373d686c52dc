/**
 * The validated, normalised configuration. Every field has its default filled in, so the rest of
 * the program never asks "was this set?". Field names follow ../shared/SPEC.md.
 * @module
 */
import type { SocketAddress } from "../net/address.ts";
import type { Cidr } from "../net/ip.ts";
import type { GateConfig, RateConfig } from "../protect/config.ts";

export const PROTOCOLS = ["tcp", "tls", "http", "postgres", "mysql", "smtp"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

export const RELAY_ENGINES = ["auto", "userspace", "splice", "sockmap", "uring"] as const;
export type RelayEngine = (typeof RELAY_ENGINES)[number];

export const BALANCE_POLICIES = ["round-robin", "random", "least-conn", "least-cpu"] as const;
export type BalancePolicy = (typeof BALANCE_POLICIES)[number];

export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFormat = "text" | "json";

/** One place a route can send a connection. */
export type UpstreamConfig =
  | { readonly kind: "address"; readonly address: SocketAddress & { kind: "inet" }; readonly text: string }
  | { readonly kind: "unix"; readonly path: string; readonly pid?: number; readonly tid?: number; readonly text: string };

/** A canned HTTP answer, for the embedded default and for health-check ports. */
export interface RespondConfig {
  readonly status: number;
  readonly contentType: string;
  readonly body: string;
  /** HTTP listeners: more response fields (`respond.headers`), written after content-type. */
  readonly headers?: readonly (readonly [string, string])[];
}

/** A listener's `http` object (protocol "http"). */
export interface HttpListenerConfig {
  /** Most bytes of a request head (431 past it). */
  readonly maxHeaderBytes: number;
  /** Most field lines in a request head (431 past it). */
  readonly maxHeaders: number;
  /** A request head must arrive whole within this, from its first byte (408 and close). */
  readonly headerTimeoutMs: number;
  /** An idle keep-alive connection is closed after this, between requests. */
  readonly keepAliveTimeoutMs: number;
  /** X-Forwarded-For: "append" to a trusted peer's list, "replace" it, or "off" (nothing added). */
  readonly forwarded: "append" | "replace" | "off";
  /** Peers whose incoming X-Forwarded-* fields are kept; from others they are replaced. */
  readonly trustedProxies: readonly Cidr[];
  /** `http.via`: the pseudonym written in a Via field on requests and responses (RFC 9110 §7.6.3); null: no Via. */
  readonly via?: string | null;
  /** `http.notFound`: the answer to a request no route takes (templates as respond's); null: 404 `no_route`. */
  readonly notFound?: RespondConfig | null;
}

/** Field edits of one direction of a route (`headers.request`, `headers.response`). */
export interface HeaderEdits {
  /** Fields written, each replacing every received field of its name. */
  readonly set: readonly (readonly [string, string])[];
  /** Names (lower case) of received fields left out. */
  readonly remove: readonly string[];
}

/** The HTTP keys of a route (protocol "http"). */
export interface HttpRouteConfig {
  /** The idle upstream connections kept per upstream of the route. */
  readonly pool: { readonly maxIdle: number; readonly idleTimeoutMs: number };
  /** From the request's head sent to the response's head received (504 past it). */
  readonly timeoutMs: number;
  readonly redirect: { readonly status: number; readonly location: string } | null;
  /** Close the connection without answering. */
  readonly drop: boolean;
  /** `headers`: edits of the request sent upstream and of the response sent back; null: none. */
  readonly headers?: { readonly request: HeaderEdits; readonly response: HeaderEdits } | null;
}

export interface RouteMatch {
  /** Client address ranges; empty = any client. */
  readonly clientCidr: readonly Cidr[];
  /** Server names, lower case without a trailing dot: "a.example.com", "*.example.com" or "" (any); empty = any. */
  readonly sni: readonly string[];
  /** ALPN protocols; the route matches when the client offers any of them; empty = any. */
  readonly alpn: readonly string[];
  /** PostgreSQL database and user names (exact); empty = any. */
  readonly database: readonly string[];
  readonly user: readonly string[];
  /** SMTP: EHLO/HELO domains and the first recipient's domain, lower case: "b.example" or "*.b.example" (one label); empty = any. */
  readonly ehlo: readonly string[];
  readonly rcptDomain: readonly string[];
  /** HTTP, per request: host patterns, path patterns, methods (src/route/host-pattern.ts); absent or empty = any. */
  readonly host?: readonly string[];
  readonly path?: readonly string[];
  readonly method?: readonly string[];
  /** MySQL: attribute name → accepted values (exact); every named attribute must hold one of them. Absent = any. */
  readonly connectionAttributes?: Readonly<Record<string, readonly string[]>>;
}

/** A listener's `smtp` object (protocol "smtp"; src/config/smtp-schema.ts fills the defaults). */
export interface SmtpListenerConfig {
  /** The name in the 220 banner and the EHLO reply. */
  readonly hostname: string;
  /** RFC 1870 SIZE offered and enforced on DATA. */
  readonly maxMessageBytes: number;
  /** Refuse MAIL with 530 until the client has done STARTTLS. */
  readonly requireTls: boolean;
  /** Offer SMTPUTF8 (the backends take it). */
  readonly smtpUtf8: boolean;
  /** Commands answered before routing (EHLO, NOOP, RSET, refused ones…); past it the session closes with 421. */
  readonly maxCommandsBeforeRouting: number;
  /** RFC 5321 §4.5.3.2.7: the client's silence while the proxy waits for its next command; 421 past it. */
  readonly commandTimeoutMs: number;
  /** The client's silence inside a message body (RFC 5321 §4.5.3.2.5's data-block bound, server side); 421 past it. */
  readonly dataTimeoutMs: number;
}

/** A certificate chain and its private key, as file paths. */
export interface CertPaths {
  readonly cert: string;
  readonly key: string;
}

/** Client-certificate verification (mTLS). */
export interface MtlsConfig {
  /** CA bundle (file path) that client certificates must chain to. */
  readonly ca: string;
  /** true: a client without a valid certificate is refused; false: asked for one, accepted without. */
  readonly requireClientCert: boolean;
}

/** TLS towards the upstream of a terminated route. */
export interface UpstreamTlsConfig {
  /** SNI sent to the upstream and the name its certificate must carry; null = the upstream's host. */
  readonly serverName: string | null;
  /** CA bundle (file path); null = the system's trust store. */
  readonly ca: string | null;
  readonly verify: boolean;
}

/** The TLS keys of a listener's `protection` (the other keys belong to src/protect/). */
export interface TlsProtection {
  readonly ja3Blocklist: readonly string[];
  readonly ja4Blocklist: readonly string[];
  readonly requireSni: boolean;
}

export interface RouteConfig {
  readonly name: string;
  /** null: the listener's default route (a route written without `match`). */
  readonly match: RouteMatch | null;
  readonly upstreams: readonly UpstreamConfig[];
  readonly balance: BalancePolicy;
  readonly respond: RespondConfig | null;
  /** maxConnectionsPerSecond/burst of the route (across workers); null = unlimited. */
  readonly rateLimit: RateConfig | null;
  /** TLS listeners: true = decrypt here (with `cert`, else the listener's), false = pass the bytes through. */
  readonly terminateTls: boolean;
  readonly cert: CertPaths | null;
  /** Overrides the listener's mtls for this route; null = the listener's. */
  readonly mtls: MtlsConfig | null;
  /** null = plaintext to the upstream. */
  readonly upstreamTls: UpstreamTlsConfig | null;
  /** SMTP: tell the backend the client's address with Postfix XCLIENT before replaying the dialogue. */
  readonly xclient: boolean;
  /** A PROXY protocol header (haproxy's proxy-protocol.txt) written to the upstream before any other byte; absent = "none". */
  readonly proxyProtocol?: "v1" | "v2";
  /** Protocol "http" only. */
  readonly http?: HttpRouteConfig;
  /**
   * `"upstreams": [{ "listener": NAME }]`: the plaintext of this terminated TLS route continues into
   * listener NAME in-process (src/proxy/chain.ts); absent for every other route.
   */
  readonly chain?: string;
}

export interface ListenerConfig {
  readonly name: string;
  readonly listen: readonly SocketAddress[];
  readonly protocol: Protocol;
  /** Share the listen addresses with other processes (SO_REUSEPORT), e.g. two instances side by side. */
  readonly reusePort: boolean;
  /** 0 = unlimited. */
  readonly maxConnections: number;
  /** Close a connection when neither side has sent a byte for this long; 0 = never. */
  readonly idleTimeoutMs: number;
  readonly connectTimeoutMs: number;
  /** Bound on the resolver's answer for one connection. */
  readonly resolveTimeoutMs: number;
  /** Trust run-time endpoints without the SSRF check (the reference proxy's *_SKIP_VALIDATION). */
  readonly skipValidation: boolean;
  /** From accept until relaying starts (sniffing, TLS handshake, PostgreSQL startup): slower is dropped. */
  readonly handshakeTimeoutMs: number;
  readonly defaultCert: CertPaths | null;
  /** A directory of NAME.pem + NAME.key pairs, chosen by the SANs of each certificate. */
  readonly certDir: string | null;
  readonly mtls: MtlsConfig | null;
  readonly tlsProtection: TlsProtection;
  readonly routes: readonly RouteConfig[];
  /** protocol "smtp": its settings; null for every other protocol. */
  readonly smtp: SmtpListenerConfig | null;
  /** The gate's part of `protection` (src/protect/config.ts). */
  readonly gate: GateConfig;
  /** Protocol "http" only. */
  readonly http?: HttpListenerConfig;
  /** Peers in `from` must open with a PROXY protocol header, whose source is the client from then on; absent = none read. */
  readonly acceptProxyProtocol?: { readonly from: readonly Cidr[] };
}

export interface Config {
  /** Where the config came from: a path, "<embedded default>" or "<flags>". */
  readonly source: string;
  readonly workers: number | "auto";
  readonly relay: RelayEngine;
  readonly resolver: string | null;
  readonly admin: { readonly listen: SocketAddress; readonly token: string | null } | null;
  readonly log: { readonly level: LogLevel; readonly format: LogFormat | null; readonly access: string | null };  // access: a path, "stdout" or "off"
  readonly routeCache: { readonly ttlMs: number; readonly maxEntries: number };
  /** On SIGTERM/SIGINT, how long open connections may finish before they are closed. */
  readonly drainTimeoutMs: number;
  readonly listeners: readonly ListenerConfig[];
}
