/**
 * The supervisor's listening sockets: for every address of every listener, one socket per worker
 * (SO_REUSEPORT) made natively and never accepted on here, or the socket systemd passed in
 * (LISTEN_FDS), or the sockets a previous switchyard handed over on a binary upgrade. The supervisor
 * holds them for the life of the service; workers get duplicates (Bun.spawn stdio) and
 * Bun.listen({fd}) on them, so a worker that dies never closes a listening socket and the connections
 * queued on its socket wait for its replacement.
 * @module
 */
import { existsSync, statSync, unlinkSync } from "node:fs";
import type { Config, ListenerConfig } from "../config/types.ts";
import { formatSocketAddress, type SocketAddress } from "../net/address.ts";
import { closeFd, isListening, listenUnix, localPort } from "../native/sockets.ts";
import { socketKey } from "./socket-key.ts";
import { BACKLOG, listenError, listenNatively } from "./native-socket.ts";

export interface HeldSocket {
  /** {@link socketKey} of the address. */
  readonly key: string;
  /** The address as the kernel bound it (the real port for port 0). */
  readonly bound: string;
  /** One fd per worker slot; a single fd (inherited from systemd) is shared by every worker. */
  readonly fds: readonly number[];
  /** Where it came from: made here, systemd, or a previous switchyard. */
  readonly origin: "native" | "systemd" | "upgrade";
}

/** Sockets inherited at start (systemd or upgrade), by key or by systemd name, taken as they are asked for. */
export interface Inherited {
  readonly origin: "systemd" | "upgrade";
  /** By socket key (upgrade) or by listener name / "unknown" (systemd, in order). */
  readonly byKey: Map<string, number[]>;
}

export class SocketSet {
  readonly #held = new Map<string, HeldSocket>();

  constructor(readonly slots: number, readonly inherited: Inherited | null) {}

  get sockets(): HeldSocket[] {
    return [...this.#held.values()];
  }

  has(key: string): boolean {
    return this.#held.has(key);
  }

  /**
   * Make (or take over) the sockets of every address of `config` not held yet. All or nothing:
   * throws with the address in the message and closes what this call made.
   */
  open(config: Config): HeldSocket[] {
    return this.#open(config, "take-or-make");
  }

  /** Only the sockets of `config` that were inherited (a single process makes the others itself). */
  adopt(config: Config): HeldSocket[] {
    return this.#open(config, "take-only");
  }

  #open(config: Config, how: "take-or-make" | "take-only"): HeldSocket[] {
    const made: HeldSocket[] = [];
    try {
      for (const listener of config.listeners) for (const address of listener.listen) {
        const key = socketKey(address, listener.name);
        if (this.#held.has(key) || made.some((m) => m.key === key)) continue;
        const held = this.#take(key, address, listener) ?? (how === "take-or-make" ? this.#make(key, address, listener) : null);
        if (held) made.push(held);
      }
    } catch (e) {
      for (const m of made) if (m.origin === "native") for (const fd of m.fds) closeFd(fd);
      throw e;
    }
    for (const m of made) this.#held.set(m.key, m);
    return made;
  }

  /** Whether `config` wants exactly the sockets held (then a reload needs no new workers). */
  matches(config: Config): boolean {
    const wanted = new Set<string>();
    for (const l of config.listeners) for (const a of l.listen) wanted.add(socketKey(a, l.name));
    return wanted.size === this.#held.size && [...wanted].every((k) => this.#held.has(k));
  }

  /** Close the sockets `config` no longer has; returns what was closed. */
  closeUnused(config: Config): HeldSocket[] {
    const wanted = new Set<string>();
    for (const l of config.listeners) for (const a of l.listen) wanted.add(socketKey(a, l.name));
    const gone: HeldSocket[] = [];
    for (const [key, h] of this.#held) {
      if (wanted.has(key)) continue;
      for (const fd of new Set(h.fds)) closeFd(fd);
      this.#held.delete(key);
      gone.push(h);
    }
    return gone;
  }

  /** Close every socket held here (a stop: once the workers close theirs too, new clients are refused). */
  closeAll(): void {
    for (const h of this.#held.values()) for (const fd of new Set(h.fds)) closeFd(fd);
    this.#held.clear();
  }

  /** Worker `slot`'s fd for every held key. */
  fdsFor(slot: number): Map<string, number> {
    const out = new Map<string, number>();
    for (const h of this.#held.values()) out.set(h.key, h.fds[slot % h.fds.length]!);
    return out;
  }

  #take(key: string, address: SocketAddress, listener: ListenerConfig): HeldSocket | null {
    if (!this.inherited) return null;
    const { byKey, origin } = this.inherited;
    const list = byKey.get(key) ?? (origin === "systemd" ? (byKey.get(listener.name)?.length ? byKey.get(listener.name) : byKey.get("unknown")) : undefined);
    if (!list?.length) return null;
    const fds = origin === "upgrade" ? list.splice(0) : [list.shift()!];
    if (isListening(fds[0]!) === "no") throw new Error(`inherited fd ${fds[0]} for ${key} is not a listening socket`);
    const port = address.kind === "inet" ? localPort(fds[0]!) : 0;
    const bound = address.kind === "inet" && port ? formatSocketAddress({ ...address, port }) : formatSocketAddress(address);
    return { key, bound, fds, origin };
  }

  #make(key: string, address: SocketAddress, listener: ListenerConfig): HeldSocket {
    if (address.kind === "unix") {
      if (existsSync(address.path) && statSync(address.path).isSocket()) unlinkSync(address.path);
      const r = listenUnix(address.path, BACKLOG);
      if (!r.ok) throw listenError(address, r.error);
      // A unix path cannot be bound twice: every worker shares the one socket.
      return { key, bound: formatSocketAddress(address), fds: [r.fd], origin: "native" };
    }
    const { fds, bound } = listenNatively(address, listener.protocol, this.slots, listener.reusePort);
    return { key, bound, fds, origin: "native" };
  }
}
