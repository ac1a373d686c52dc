/**
 * A listening TCP socket made natively (native/src/listen.zig) with the options its listener's
 * protocol wants; the supervisor makes one per worker ({@link SocketSet}), one process one per
 * address, and Bun listens on the fd either way. An address another process listens on is refused
 * unless the listener opts in with `reusePort`.
 * @module
 */
import type { Protocol } from "../config/types.ts";
import { formatSocketAddress, type SocketAddress } from "../net/address.ts";
import { parseIp } from "../net/ip.ts";
import { closeFd, LISTEN_FLAGS, listenInet, localPort } from "../native/sockets.ts";
import { portHolders } from "./port-holder.ts";
import { protocolModule } from "../protocol/registry.ts";

/** Listen queue length; the kernel caps it at net.core.somaxconn. */
export const BACKLOG = 4096;

/**
 * Listeners whose protocol's client speaks first (ProtocolModule.speaksFirst "client") get
 * TCP_DEFER_ACCEPT, which leaves a connection with the kernel until its first bytes arrive, so the
 * proxy accepts with the hello (or startup message) already queued and a client that never speaks
 * costs it nothing. Not plain "tcp" ("unknown"): it may carry a server-first protocol (the reference
 * proxy's TCP_MYSQL_PORT is a tcp listener for MySQL; SMTP likewise), whose client waits for a
 * greeting and would sit in the kernel for the whole defer period (10 s and more) before the proxy
 * even dialled the server. Never server-first protocols (DESIGN.md, "Protocol facts").
 */
const clientSpeaksFirst = (protocol: Protocol): boolean => protocolModule(protocol).speaksFirst === "client";

/**
 * The sy_listen_inet flags for a listener speaking `protocol` on an address of IP `family`.
 * `shared`: SO_REUSEPORT, for several sockets on one address (a socket per worker, or an operator's
 * `reusePort` for two instances side by side). Never otherwise: with it, a second instance would
 * silently take half the connections.
 */
export function listenFlags(protocol: Protocol, family: 4 | 6, shared: boolean): number {
  let flags = LISTEN_FLAGS.fastOpen;
  if (shared) flags |= LISTEN_FLAGS.reusePort;
  if (family === 6) flags |= LISTEN_FLAGS.v6Only;
  if (clientSpeaksFirst(protocol)) flags |= LISTEN_FLAGS.deferAccept;
  return flags;
}

export interface MadeSockets {
  /** `count` sockets on the same address and port (SO_REUSEPORT when more than one). */
  readonly fds: number[];
  /** The address as the kernel bound it (the real port for port 0). */
  readonly bound: string;
}

/**
 * `count` listening sockets on inet `address`; throws `cannot listen on ADDRESS: why`, having closed
 * what it made. `reusePort` (the listener's opt-in): share the address with other processes. Without
 * it, an address someone else listens on is refused even when `count` sockets need SO_REUSEPORT
 * among themselves: a socket without it is bound first, which the kernel refuses if anyone listens.
 */
export function listenNatively(address: SocketAddress & { kind: "inet" }, protocol: Protocol, count: number, reusePort: boolean): MadeSockets {
  const ip = parseIp(address.host === "localhost" ? "127.0.0.1" : address.host);
  if (!ip) throw listenError(address, "not an IP address");
  const flags = listenFlags(protocol, ip.family, count > 1 || reusePort);
  if (count > 1 && !reusePort && address.port !== 0) {
    const probe = listenInet(ip.bytes, address.port, 1, flags & LISTEN_FLAGS.v6Only);
    if (!probe.ok) throw listenError(address, probe.error);
    closeFd(probe.fd);
  }
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

/**
 * The error both ways of listening report: `cannot listen on ADDRESS: why`; for an address in use,
 * who holds it where that can be seen. `what`: what listens there ("admin API" for the admin address).
 */
export function listenError(address: SocketAddress, error: string, what = ""): Error {
  let why = error === "EADDRINUSE" ? "address already in use" : error === "EACCES" ? "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)" : error;
  if (error === "EADDRINUSE" && address.kind === "inet") {
    const holders = portHolders(address.port);
    why += holders.length ? ` (held by ${holders.join(", ")})` : " (by a process this user cannot see)";
    if (!what) why += `; two instances share an address only if both set "reusePort": true`;
  }
  return new Error(`cannot listen on ${what ? `${what} ` : ""}${formatSocketAddress(address)}: ${why}`);
}
