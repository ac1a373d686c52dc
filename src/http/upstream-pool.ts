/**
 * Upstream connections of HTTP routes, kept open between requests: one pool per upstream of a route
 * (the peer's identity is the upstream as configured; upstream TLS and PROXY headers are not built
 * for http yet, so nothing else can tell two connections to it apart). A pool is a LIFO idle list:
 * the connection used last is handed out first (it is the least likely to have been closed by the
 * upstream's own idle timer, and the others age out), bounded by `maxIdle`, each idle connection
 * closed after `idleTimeoutMs` (swept by src/http/timeouts.ts, no timer per connection).
 *
 * An UpstreamLink is one upstream connection; while a request uses it, its `owner` gets the socket's
 * events. An idle link that receives bytes or closes is dropped from the pool.
 * @module
 */
import type { Socket, SocketHandler } from "bun";
import type { DialTarget } from "../upstream/endpoint.ts";
import type { RouteRuntime } from "../proxy/runtime.ts";
import { ByteQueue } from "../net/byte-queue.ts";
import type { PoolStats } from "../control/http-metrics.ts";

/** What a link tells the request that uses it. */
export interface LinkOwner {
  upstreamOpen(link: UpstreamLink): void;
  upstreamData(link: UpstreamLink, chunk: Uint8Array): void;
  upstreamDrain(link: UpstreamLink): void;
  /** The connection closed (or never opened: `connectFailed`). */
  upstreamGone(link: UpstreamLink, connectFailed: boolean): void;
}

/** Bound of the bytes waiting for one upstream socket: the request side pauses the client long before. */
const OUT_LIMIT = 2 * 1024 * 1024;

export class UpstreamLink {
  socket: Socket<UpstreamLink> | null = null;
  owner: LinkOwner | null = null;
  /** Since when it has been idle in its pool (performance.now()). */
  idleSince = 0;
  /** When the dial began, for connectTimeoutMs; 0 once open. */
  dialingSince = performance.now();
  closed = false;
  /** Paused because the client fell behind (src/http/session.ts pauses and resumes it). */
  paused = false;
  /** The address dialled (the access log's upstreamAddr). */
  addr = "";
  /** Whether it served a request before (the access log's `reused`). */
  used = false;
  /** Bytes the socket has not taken yet (while connecting, or after a short write). */
  readonly out = new ByteQueue(OUT_LIMIT, "upstream_write_overflow");

  constructor(readonly pool: UpstreamPool) {}

  /**
   * Write now or queue; false when the socket did not take everything (the caller pauses its source).
   * `transient`: the caller reuses `bytes` after this, so what is queued is a copy.
   */
  write(bytes: Uint8Array, transient = false): boolean {
    if (this.closed) return true;
    if (this.socket === null || this.out.size > 0) {
      this.out.push(transient ? bytes.slice() : bytes);
      return false;
    }
    const n = this.socket.write(bytes);
    if (n < bytes.length) {
      const rest = n > 0 ? bytes.subarray(n) : bytes;
      this.out.push(transient ? rest.slice() : rest);
      return false;
    }
    return true;
  }

  /** Write what is queued; true when nothing is left. */
  flush(): boolean {
    const s = this.socket;
    if (!s || this.closed) return this.out.size === 0;
    for (let chunk = this.out.peek(); chunk !== null; chunk = this.out.peek()) {
      const n = s.write(chunk);
      if (n > 0) this.out.consume(n);
      if (n < chunk.length) return false;
    }
    return true;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.owner = null;
    this.out.clear();
    this.socket?.end();
    this.pool.forget(this);
  }
}

export class UpstreamPool {
  /** Idle links, the most recently used last. */
  readonly idle: UpstreamLink[] = [];
  /** Links in use, for the pool's metrics and shutdown. */
  active = 0;
  reusedTotal = 0;

  constructor(
    readonly upstream: string,
    readonly maxIdle: number,
    readonly idleTimeoutMs: number,
    /** Its upstream's metrics (reused, dialled; idle and active are read from the pool at scrape time). */
    readonly stats: PoolStats | null = null,
  ) {
    stats?.pools.add(this);
  }

  /** An idle link (the newest), or null: the caller dials. */
  take(owner: LinkOwner): UpstreamLink | null {
    for (let link = this.idle.pop(); link !== undefined; link = this.idle.pop()) {
      if (link.closed) continue;
      link.owner = owner;
      this.active++;
      this.reusedTotal++;
      if (this.stats) this.stats.reusedTotal++;
      return link;
    }
    return null;
  }

  /** A new link to `target`; its owner hears `upstreamOpen` or `upstreamGone(connectFailed)`. */
  dial(target: DialTarget, owner: LinkOwner): UpstreamLink {
    const link = new UpstreamLink(this);
    link.owner = owner;
    link.addr = target.kind === "inet" ? (target.ip.includes(":") ? `[${target.ip}]:${target.port}` : `${target.ip}:${target.port}`) : `unix:${target.path}`;
    this.active++;
    if (this.stats) this.stats.dialledTotal++;
    const options = { socket: LINK_HANDLERS, data: link };
    const connecting = target.kind === "unix"
      ? Bun.connect<UpstreamLink>({ unix: target.path, ...options })
      : Bun.connect<UpstreamLink>({ hostname: target.ip, port: target.port, ...options });
    connecting.catch(ignore); // the same failure arrives in connectError
    return link;
  }

  /** The request is done with `link`: keep it idle (if there is room) or close it. */
  put(link: UpstreamLink): void {
    this.active--;
    link.owner = null;
    if (link.closed) return;
    if (this.idle.length >= this.maxIdle || link.out.size > 0) return link.close();
    link.used = true;
    link.idleSince = performance.now();
    this.idle.push(link);
  }

  /** The request gives `link` up without reuse (an error, or a body not read to its end). */
  discard(link: UpstreamLink): void {
    this.active--;
    link.close();
  }

  /** Close idle links older than idleTimeoutMs; the oldest are at the front. */
  sweep(now: number): void {
    while (this.idle.length > 0 && now - this.idle[0]!.idleSince > this.idleTimeoutMs) this.idle.shift()!.close();
  }

  /** Take a closed link out of the idle list. */
  forget(link: UpstreamLink): void {
    const i = this.idle.indexOf(link);
    if (i >= 0) this.idle.splice(i, 1);
  }

  closeAll(): void {
    for (const link of this.idle.splice(0)) link.close();
  }
}

function ignore(): void {}

const LINK_HANDLERS: SocketHandler<UpstreamLink> = {
  binaryType: "uint8array",
  open(s) {
    const link = s.data;
    link.socket = s;
    link.dialingSince = 0;
    if (link.closed) return void s.end();
    link.owner?.upstreamOpen(link);
  },
  data(s, chunk) {
    const link = s.data;
    if (link.owner) return link.owner.upstreamData(link, chunk);
    link.close(); // an idle upstream has nothing to say: whatever it sent, the link cannot be trusted
  },
  drain(s) {
    s.data.owner?.upstreamDrain(s.data);
  },
  end(s) {
    s.end();
  },
  close(s) {
    gone(s.data, false);
  },
  error() {},
  connectError(s) {
    gone(s.data, true);
  },
};

function gone(link: UpstreamLink, connectFailed: boolean): void {
  const owner = link.owner;
  link.closed = true;
  link.owner = null;
  link.pool.forget(link);
  owner?.upstreamGone(link, connectFailed);
}

/** Pools by route (the route's runtime is replaced on reload, and its pools with it), one per upstream. */
const POOLS = new WeakMap<RouteRuntime, UpstreamPool[]>();
/** Every pool, for the sweeper. */
export const ALL_POOLS = new Set<UpstreamPool>();

/** The pool of upstream `i` of `route`. */
export function poolOf(route: RouteRuntime, i: number): UpstreamPool {
  let pools = POOLS.get(route);
  if (!pools) POOLS.set(route, (pools = []));
  let pool = pools[i];
  if (!pool) {
    const cfg = route.config.http?.pool ?? { maxIdle: 32, idleTimeoutMs: 30_000 };
    const upstream = route.config.upstreams[i]!.text;
    const stats = route.listener.state.metrics.http.pool(route.listener.config.name, route.config.name, upstream);
    pools[i] = pool = new UpstreamPool(upstream, cfg.maxIdle, cfg.idleTimeoutMs, stats);
    ALL_POOLS.add(pool);
  }
  return pool;
}
