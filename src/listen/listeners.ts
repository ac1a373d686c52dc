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

export type BoundListener = { readonly address: string; readonly server: TCPSocketListener<Conn> | UnixSocketListener<Conn> };

/** The socket handlers of one listener: the shared relay handlers plus an `open` that knows it. */
export function handlersFor(listener: ListenerRuntime) {
  // Listeners that read before routing (tls, postgres) wrap the relay's handlers (src/proxy/sniff-stage.ts).
  const base = listener.sniffs ? SNIFF_HANDLERS : CLIENT_HANDLERS;
  return { ...base, open: (client: Socket<Conn>) => accept(listener, client) };
}

/** Bind one address for `listener`; throws with the address in the message if it cannot be bound. */
export function bindAddress(address: SocketAddress, listener: ListenerRuntime): BoundListener {
  return { address: formatSocketAddress(address), server: listen(address, handlersFor(listener)) };
}

/** Point an already bound address at another listener runtime (a reload): the socket stays open. */
export function rebind(bound: BoundListener, listener: ListenerRuntime): void {
  bound.server.reload({ socket: handlersFor(listener) });
}

/** The address a bound socket really has (the kernel's port for port 0). */
export function boundAddress(b: BoundListener): string {
  const s = b.server as { hostname?: string; port?: number };
  return "port" in b.server && s.port !== undefined ? formatSocketAddress({ kind: "inet", host: s.hostname!, port: s.port, literal: true }) : b.address;
}

function listen(address: SocketAddress, socket: typeof CLIENT_HANDLERS & { open(client: Socket<Conn>): void }) {
  const text = formatSocketAddress(address);
  try {
    if (address.kind === "unix") {
      removeStaleSocket(address.path);
      return Bun.listen<Conn>({ unix: address.path, socket, allowHalfOpen: true });
    }
    return Bun.listen<Conn>({ hostname: address.host, port: address.port, socket, allowHalfOpen: true });
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
