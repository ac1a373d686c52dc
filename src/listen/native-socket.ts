/**
 * A listening TCP socket made natively (native/src/listen.zig) with the options its listener's
 * protocol wants; the supervisor makes one per worker ({@link SocketSet}), one process one per
 * address, and Bun listens on the fd either way.
 * @module
 */
import type { Protocol } from "../config/types.ts";
import { formatSocketAddress, type SocketAddress } from "../net/address.ts";
import { parseIp } from "../net/ip.ts";
import { closeFd, LISTEN_FLAGS, listenInet, localPort } from "../native/sockets.ts";

/** Listen queue length; the kernel caps it at net.core.somaxconn. */
export const BACKLOG = 4096;

/**
 * Protocols whose client speaks first: only these get TCP_DEFER_ACCEPT, which leaves a connection
 * with the kernel until its first bytes arrive, so the proxy accepts with the hello (or startup
 * message) already queued and a client that never speaks costs it nothing.
 * Not plain "tcp": it may carry a server-first protocol (the reference proxy's TCP_MYSQL_PORT is a
 * tcp listener for MySQL; SMTP likewise), whose client waits for a greeting and would sit in the
 * kernel for the whole defer period (10 s and more) before the proxy even dialled the server. A tcp
 * listener reads nothing before it has dialled, so deferring would gain it nothing in exchange.
 * Never mysql or smtp (DESIGN.md, "Protocol facts").
 */
const CLIENT_FIRST: ReadonlySet<Protocol> = new Set<Protocol>(["tls", "http", "postgres"]);

/** The sy_listen_inet flags for a listener speaking `protocol` on an address of IP `family`. */
export function listenFlags(protocol: Protocol, family: 4 | 6): number {
  let flags = LISTEN_FLAGS.reusePort | LISTEN_FLAGS.fastOpen;
  if (family === 6) flags |= LISTEN_FLAGS.v6Only;
  if (CLIENT_FIRST.has(protocol)) flags |= LISTEN_FLAGS.deferAccept;
  return flags;
}

export interface MadeSockets {
  /** `count` SO_REUSEPORT sockets on the same address and port. */
  readonly fds: number[];
  /** The address as the kernel bound it (the real port for port 0). */
  readonly bound: string;
}

/** `count` listening sockets on inet `address`; throws `cannot listen on ADDRESS: why`, having closed what it made. */
export function listenNatively(address: SocketAddress & { kind: "inet" }, protocol: Protocol, count: number): MadeSockets {
  const ip = parseIp(address.host === "localhost" ? "127.0.0.1" : address.host);
  if (!ip) throw listenError(address, "not an IP address");
  const flags = listenFlags(protocol, ip.family);
  const fds: number[] = [];
  let port = address.port;
  for (let i = 0; i < count; i++) {
    const r = listenInet(ip.bytes, port, BACKLOG, flags);
    if (!r.ok) {
      for (const fd of fds) closeFd(fd);
      throw listenError(address, r.error);
    }
    fds.push(r.fd);
    port = port || localPort(fds[0]!); // port 0: the others join the port the kernel chose
  }
  return { fds, bound: formatSocketAddress({ ...address, port }) };
}

/** The error both ways of listening report: `cannot listen on ADDRESS: why`. */
export function listenError(address: SocketAddress, error: string): Error {
  const why = error === "EADDRINUSE" ? "address already in use" : error === "EACCES" ? "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)" : error;
  return new Error(`cannot listen on ${formatSocketAddress(address)}: ${why}`);
}
