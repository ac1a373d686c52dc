/**
 * Listening sockets: one Bun listener per address of every listener (IPv4, IPv6, unix). Each gets
 * the shared client handlers plus an `open` that knows its listener.
 * @module
 */
import { unlinkSync, existsSync, statSync } from "node:fs";
import type { Socket } from "bun";
import type { SocketAddress } from "../net/address.ts";
import { formatSocketAddress } from "../net/address.ts";
import type { Conn } from "../proxy/conn.ts";
import type { ListenerRuntime } from "../proxy/runtime.ts";
import { accept, clientHandlers } from "../proxy/pipeline.ts";
import { BACKLOG, listenError, listenNatively } from "./native-socket.ts";
import { closeFd, dupFd, setBacklog, socketsUnavailable } from "../native/sockets.ts";
import { socketFd } from "../net/socket-fd.ts";
import { log } from "../log/logger.ts";
import { BoundListener, type Handlers, type Relisten } from "./bound-listener.ts";
import { fdPressure } from "./fd-pressure.ts";
import { NativeAcceptListener, NOT_CONFIGURED, nativeAcceptRefusal } from "./native-accept.ts";

/** The socket handlers of one listener: the shared relay handlers plus an `open` that knows it. */
export function handlersFor(listener: ListenerRuntime): Handlers {
  // Listeners that read before routing wrap the relay's handlers (src/proxy/pipeline.ts).
  return {
    ...clientHandlers(listener),
    open: (client: Socket<Conn>) => {
      fdPressure.accepted(socketFd(client));
      accept(listener, client);
    },
  };
}

/**
 * Where listening sockets come from:
 * - `bind`: Bun binds each address itself (no native library, so no TCP_DEFER_ACCEPT).
 * - `native`: one process with the native library: the sockets systemd or an upgrade handed in
 *   (`handedIn`, by socket key, each taken once: a reload that drops and re-adds an address makes it
 *   anew), the other inet addresses made natively with their protocol's options
 *   (src/listen/native-socket.ts). Unix sockets stay Bun's: no TCP option applies to them, and Bun
 *   removes the socket file when it stops listening.
 * - `inherited`: a worker's, the supervisor's sockets only (or, with `bindOthers`, one process
 *   without the library that binds what systemd did not hand in).
 */
export type SocketSource =
  | { readonly kind: "bind" }
  | { readonly kind: "native"; readonly handedIn: Map<string, number> }
  | { readonly kind: "inherited"; readonly fds: ReadonlyMap<string, number>; readonly bindOthers?: boolean };

/** Bind one address for `listener`; throws with the address in the message if it cannot be bound. */
export function bindAddress(address: SocketAddress, listener: ListenerRuntime, key: string, source: SocketSource = PLAIN): BoundListener {
  const handlers = handlersFor(listener);
  const name = listener.config.name;
  const text = formatSocketAddress(address);
  if (source.kind === "inherited" && (source.fds.has(key) || !source.bindOthers)) {
    const fd = source.fds.get(key);
    if (fd === undefined) throw new Error(`cannot listen on ${text}: the supervisor holds no socket for it`);
    return listenOn(fd, text, true, address, listener, handlers);
  }
  if (source.kind === "native") {
    const fd = source.handedIn.get(key);
    if (fd !== undefined) {
      source.handedIn.delete(key);
      return listenOn(fd, text, true, address, listener, handlers);
    }
    if (address.kind === "inet") {
      const { fds: [fd], bound } = listenNatively(address, listener.config.protocol, 1, listener.config.reusePort);
      try {
        // Bun (or the uring engine's listener) owns the fd from here: stop() closes it.
        return listenOn(fd!, bound, false, address, listener, handlers);
      } catch (e) {
        closeFd(fd!);
        throw e;
      }
    }
  }
  // Bound by Bun: pausing closes the socket (a unix one's file too) and resuming binds it again.
  const reusePort = listener.config.reusePort;
  const server = listen(address, handlers, reusePort);
  const again = address.kind === "inet" ? { ...address, port: (server as { port: number }).port } : address; // port 0: the one it got
  const rebinds: Relisten = { again: (h) => listen(again, h, reusePort), release: () => {}, fd: -1 };
  return new BoundListener(text, false, server, name, handlers, rebinds);
}

/**
 * A listener on socket `fd`: the uring engine's (src/listen/native-accept.ts) where the listener
 * qualifies for native accept, else Bun's.
 */
function listenOn(fd: number, text: string, inherited: boolean, address: SocketAddress, listener: ListenerRuntime, handlers: Handlers): BoundListener {
  let why = nativeAcceptRefusal(listener, address);
  if (why === null) {
    try {
      const host = address.kind === "inet" ? address.host : "";
      return new NativeAcceptListener(text, inherited, fd, host, listener, handlers, (now) => onFd(fd, text, inherited, now.config.name, handlersFor(now)));
    } catch (e) {
      why = (e as Error).message;
    }
  }
  if (why !== NOT_CONFIGURED) log.info("native accept off", { listener: listener.config.name, address: text, reason: why });
  return onFd(fd, text, inherited, listener.config.name, handlers);
}

/** A listener on socket `fd`, keeping a duplicate to pause with (none without the native library). */
function onFd(fd: number, address: string, inherited: boolean, name: string, handlers: Handlers): BoundListener {
  const server = listenOnFd(fd, handlers);
  const keeper = socketsUnavailable() === null ? dupFd(fd) : null;
  if (keeper && !keeper.ok) log.warn("cannot keep a duplicate of the listening socket: it will not pause when out of file descriptors", { address, error: keeper.error });
  const relisten: Relisten | null = keeper?.ok ? {
    again: (h) => {
      const copy = dupFd(keeper.fd);
      if (!copy.ok) throw new Error(copy.error);
      try {
        return listenOnFd(copy.fd, h);
      } catch (e) {
        closeFd(copy.fd);
        throw e;
      }
    },
    release: () => closeFd(keeper.fd),
    fd: keeper.fd,
  } : null;
  return new BoundListener(address, inherited, server, name, handlers, relisten);
}

function listenOnFd(fd: number, handlers: Handlers) {
  // Bun.listen({fd}) is not in bun-types 1.4.5 but is supported (DESIGN.md, "Things about Bun").
  const server = Bun.listen<Conn>({ fd, socket: handlers, allowHalfOpen: true } as unknown as Parameters<typeof Bun.listen<Conn>>[0]);
  // Bun calls listen(fd, 511) on it (seen with strace), replacing the backlog the socket was made
  // with (ours, or systemd's Backlog=, which Bun overrides either way): set ours again.
  // Without the library this cannot be done (the start-up warning says what is missing).
  const failed = socketsUnavailable() === null ? setBacklog(fd, BACKLOG) : null;
  if (failed) log.warn("cannot set the listen backlog; Bun's 511 stays", { fd, error: failed });
  return server;
}

const PLAIN: SocketSource = { kind: "bind" };

/** Point an already bound address at another listener runtime (a reload): the socket stays open. */
export function rebind(bound: BoundListener, listener: ListenerRuntime, address: SocketAddress): void {
  if (bound instanceof NativeAcceptListener) return bound.repointTo(listener, handlersFor(listener), address);
  bound.repoint(listener.config.name, handlersFor(listener));
}

function listen(address: SocketAddress, socket: Handlers, reusePort: boolean) {
  try {
    if (address.kind === "unix") {
      removeStaleSocket(address.path);
      return Bun.listen<Conn>({ unix: address.path, socket, allowHalfOpen: true });
    }
    // reusePort works in Bun.listen 1.4.5 (checked) but is typed only for Bun.serve.
    return Bun.listen<Conn>({ hostname: address.host, port: address.port, socket, allowHalfOpen: true, ...(reusePort ? { reusePort } : {}) } as unknown as Bun.TCPSocketListenOptions<Conn>);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw listenError(address, code === "EADDRINUSE" || code === "EACCES" ? code : (e as Error).message);
  }
}

/** A socket file left by a previous run would make bind fail; remove it, but never a regular file. */
function removeStaleSocket(path: string): void {
  if (existsSync(path) && statSync(path).isSocket()) unlinkSync(path);
}
