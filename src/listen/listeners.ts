/**
 * Listening sockets: one Bun listener per address of every listener (IPv4, IPv6, unix). Each gets
 * the shared client handlers plus an `open` that knows its listener.
 * @module
 */
import { unlinkSync, existsSync, statSync } from "node:fs";
import type { Socket, TCPSocketListener, UnixSocketListener } from "bun";
import type { SocketAddress } from "../net/address.ts";
import { formatSocketAddress } from "../net/address.ts";
import type { Conn } from "../proxy/conn.ts";
import type { ListenerRuntime } from "../proxy/runtime.ts";
import { accept } from "../proxy/pipeline.ts";
import { CLIENT_HANDLERS } from "../relay/userspace.ts";
import { SNIFF_HANDLERS } from "../proxy/sniff-stage.ts";

export type BoundListener = {
  readonly address: string;
  readonly server: TCPSocketListener<Conn> | UnixSocketListener<Conn>;
  /** Listening on a socket someone else made (supervisor, systemd): they log and own it. */
  readonly inherited: boolean;
};

/** The socket handlers of one listener: the shared relay handlers plus an `open` that knows it. */
export function handlersFor(listener: ListenerRuntime) {
  // Listeners that read before routing (tls, postgres) wrap the relay's handlers (src/proxy/sniff-stage.ts).
  const base = listener.sniffs ? SNIFF_HANDLERS : CLIENT_HANDLERS;
  return { ...base, open: (client: Socket<Conn>) => accept(listener, client) };
}

/**
 * Where a worker's sockets come from: the supervisor's (an fd per socket key, Bun.listen({fd})), or,
 * without the native library, its own SO_REUSEPORT bind. A single process binds plainly.
 */
export type SocketSource = { readonly kind: "bind"; readonly reusePort: boolean } | { readonly kind: "inherited"; readonly fds: ReadonlyMap<string, number>; readonly bindOthers?: boolean };

/** Bind one address for `listener`; throws with the address in the message if it cannot be bound. */
export function bindAddress(address: SocketAddress, listener: ListenerRuntime, key: string, source: SocketSource = PLAIN): BoundListener {
  const handlers = handlersFor(listener);
  if (source.kind === "inherited" && (source.fds.has(key) || !source.bindOthers)) {
    const fd = source.fds.get(key);
    if (fd === undefined) throw new Error(`cannot listen on ${formatSocketAddress(address)}: the supervisor holds no socket for it`);
    // Bun.listen({fd}) is not in bun-types 1.4.5 but is supported (DESIGN.md, "Things about Bun").
    const server = Bun.listen<Conn>({ fd, socket: handlers, allowHalfOpen: true } as unknown as Parameters<typeof Bun.listen<Conn>>[0]);
    return { address: formatSocketAddress(address), server, inherited: true };
  }
  return { address: formatSocketAddress(address), server: listen(address, handlers, source.kind === "bind" && source.reusePort), inherited: false };
}

const PLAIN: SocketSource = { kind: "bind", reusePort: false };

/** Point an already bound address at another listener runtime (a reload): the socket stays open. */
export function rebind(bound: BoundListener, listener: ListenerRuntime): void {
  bound.server.reload({ socket: handlersFor(listener) });
}

/** The address a bound socket really has (the kernel's port for port 0). */
export function boundAddress(b: BoundListener): string {
  const s = b.server as { hostname?: string; port?: number };
  return "port" in b.server && s.port !== undefined ? formatSocketAddress({ kind: "inet", host: s.hostname!, port: s.port, literal: true }) : b.address;
}

function listen(address: SocketAddress, socket: typeof CLIENT_HANDLERS & { open(client: Socket<Conn>): void }, reusePort: boolean) {
  const text = formatSocketAddress(address);
  try {
    if (address.kind === "unix") {
      removeStaleSocket(address.path);
      return Bun.listen<Conn>({ unix: address.path, socket, allowHalfOpen: true });
    }
    // reusePort works in Bun.listen 1.4.5 (checked) but is typed only for Bun.serve.
    return Bun.listen<Conn>({ hostname: address.host, port: address.port, socket, allowHalfOpen: true, ...(reusePort ? { reusePort } : {}) } as unknown as Bun.TCPSocketListenOptions<Conn>);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "EADDRINUSE" ? "address already in use" : code === "EACCES" ? "permission denied (ports below 1024 need CAP_NET_BIND_SERVICE)" : (e as Error).message;
    throw new Error(`cannot listen on ${text}: ${why}`);
  }
}

/** A socket file left by a previous run would make bind fail; remove it, but never a regular file. */
function removeStaleSocket(path: string): void {
  if (existsSync(path) && statSync(path).isSocket()) unlinkSync(path);
}
