/**
 * One HTTP/1.1 client connection once the http module owns it (ProtocolModule.serve): the request
 * loop. Per request: parse the head (parse-head.ts, resumable), route it with the resolver module if
 * there is one (resolve-request.ts) or the listener's table (src/route/table.ts, on host/path/method), then answer it here (respond, redirect, 404, refusals),
 * drop the connection, or forward it: the head re-serialised without hop-by-hop fields and with
 * X-Forwarded-*, the body streamed as it arrives (Content-Length counted, chunked framed by
 * ChunkedFramer, never buffered whole), the response head parsed and re-serialised, its body
 * streamed per responseBody (none for HEAD/1xx/204/304; until close ends the client connection
 * too), the upstream connection given back to its pool, the next request read. An upgrade answered
 * with 101 makes the connection a relay both ways from then on (phase TUNNEL, tunnel.ts).
 *
 * Flow control: each direction writes straight to its socket and queues only what the socket did not
 * take; while anything waits, the source is paused, and resumed on drain. Requests are answered in
 * order, one at a time: bytes of pipelined requests wait in inbuf, and past maxHeaderBytes of them
 * the client is paused, so nothing is read ahead without bound. Pause and resume are called only on
 * a change (each is an epoll call), not per request.
 *
 * Timeouts are swept (src/http/timeouts.ts), never a timer per request: headerTimeoutMs from a
 * head's first byte (408), keepAliveTimeoutMs between requests, the route's timeoutMs from the
 * request sent to the response head (504), connectTimeoutMs for a dial (504).
 * @module
 */
import type { Conn } from "../proxy/conn.ts";
import type { RouteRuntime } from "../proxy/runtime.ts";
import type { HttpListenerConfig } from "../config/types.ts";
import { abort } from "../proxy/finish.ts";
import { ByteQueue } from "../net/byte-queue.ts";
import { CidrSet, parseIp } from "../net/ip.ts";
import { RequestHead, ResponseHead } from "./head.ts";
import { parseRequestHead, parseResponseHead } from "./parse-head.ts";
import { requestBody, responseBody, type RequestBody, type ResponseBody } from "./body.ts";
import { ChunkedFramer } from "./chunked.ts";
import { compactInPlace, serializeHead, serializeHeadInto, type FieldEdit, type HeadEdits } from "./serialize.ts";
import { forwardedEdits } from "./forwarded.ts";
import { errorResponse, notFoundResponse, redirectResponse, respondResponse, type TemplateValues } from "./answers.ts";
import { requestEdits, responseEdits } from "./header-edits.ts";
import {
  forwardsAsUpgrade, startTunnel, tunnelClientData, tunnelClientDrain, tunnelClientEnd, tunnelUpstreamData, tunnelUpstreamDrain,
  tunnelUpstreamGone, withUpgrade,
} from "./tunnel.ts";
import { poolOf, type LinkOwner, type UpstreamLink, type UpstreamPool } from "./upstream-pool.ts";
import { resolveEndpoint, type DialTarget } from "../upstream/endpoint.ts";
import { normaliseHost } from "../route/host-pattern.ts";
import { logExchange } from "./exchange-log.ts";
import { countExchange } from "./request-metrics.ts";
import { resolveRequest, resolvedPool } from "./resolve-request.ts";
import { watch, unwatch } from "./timeouts.ts";
import { MAX_READ_BYTES } from "../sniff/collect.ts";
import { freeRequestHeads, giveRequestHead, takeRequestHead } from "./head-pool.ts";
import { FINISHED } from "../proxy/conn.ts";
import { copyRange } from "./copy-range.ts";

/** Where the connection is in its request loop. */
export const enum Phase {
  /** Between requests, or reading a head (inbuf non-empty). */
  HEAD,
  /** A request is being forwarded or answered. */
  EXCHANGE,
  /** The last answer is being written; the connection ends after it. */
  CLOSING,
  /** After a 101 to an upgrade: a plain relay both ways (tunnel.ts). */
  TUNNEL,
}

/** Where the response of the current exchange is. */
const enum Response {
  /** Not asked for yet (connecting), or waiting for the head. */
  HEAD,
  BODY,
  DONE,
}

/** RFC 9110 §9.2.2: a request the proxy may send again when the connection died under it. */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/** Bound of the bytes waiting for the client: the upstream is paused long before. */
const CLIENT_OUT_LIMIT = 2 * 1024 * 1024;

/** An absolute upper bound for a response head from an upstream (they are not the client's to size). */
const RESPONSE_LIMITS = { maxHeaderBytes: 65_536, maxHeaders: 256 };

export class HttpSession implements LinkOwner {
  phase = Phase.HEAD;
  /** Client bytes not handed on yet: the head being read, body bytes, a pipelined request. */
  readonly inbuf: ByteQueue;
  /** Upstream bytes not handed on yet (a response head, an unfinished chunk line). */
  readonly upbuf = new ByteQueue(RESPONSE_LIMITS.maxHeaderBytes + MAX_READ_BYTES, "response_head_too_large");
  /** Bytes the client socket has not taken yet. */
  readonly clientOut = new ByteQueue(CLIENT_OUT_LIMIT, "client_write_overflow");
  /** The request head being read or answered (from head-pool.ts; none while idle: see `head`). */
  private currentHead: RequestHead | null;
  /** The listener's free heads (head-pool.ts), looked up once. */
  private readonly freeHeads: RequestHead[];
  /** The response head of the exchange in flight, from a shared free list: an idle connection holds none. */
  response: ResponseHead | null = null;
  resume = 0;
  responseResume = 0;
  /** When the current head's first byte came; when the connection went idle. */
  headSince = 0;
  idleSince = performance.now();
  readonly trustedPeer: boolean;
  /** The pipeline paused the client before handing it over (src/proxy/pipeline.ts endSniffing). */
  clientPaused = true;

  // ── the current exchange ──
  route: RouteRuntime | null = null;
  upstreamIndex = -1;
  pool: UpstreamPool | null = null;
  link: UpstreamLink | null = null;
  /**
   * The last request's Host (as received) and path, and the host as routes compare it: keep-alive
   * clients repeat them, so a request whose bytes are the same reuses the strings (no decoding).
   */
  rawHost = "";
  routeHost = "";
  path = "";
  /** X-Forwarded-* for an untrusted peer: they depend only on its address and rawHost (forwardedFor). */
  forwardedFor: FieldEdit[] | null = null;
  forwardedHost = "";
  requestStart = 0;
  sentAt = 0;
  method = "";
  requestKind: RequestBody = "none";
  requestLeft = 0;
  requestDone = true;
  /** Made for the first chunked body (most connections never see one): memory per idle connection. */
  requestFramer: ChunkedFramer | null = null;
  responseState = Response.HEAD;
  responseKind: ResponseBody = "none";
  responseLeft = 0;
  responseFramer: ChunkedFramer | null = null;
  /** The edits of the response head (see responseHead). */
  responseEdits: HeadEdits = NO_EDITS;
  /** Bytes of this exchange's response already given to the client (after that, no error answer can be sent). */
  responseBytes = 0;
  /** The upstream connection may carry another request after this one. */
  upstreamReusable = false;
  /** The client connection ends after this exchange. */
  closeAfter = false;
  /** The configuration is retired (reload, drain): every exchange from now on is the connection's last. */
  retiring = false;
  status = 0;
  upstreamMs: number | null = null;
  reused = false;
  retried = false;
  /** The request is forwarded as an upgrade (tunnel.ts); a 101 to it makes the connection a tunnel. */
  upgrading = false;
  /** In a tunnel, the client's FIN came (the tunnel ends once the upstream took what waits). */
  tunnelClientEnded = false;
  /** The resolver module chose this exchange's endpoint (conn.upstreamText); `route` is null. */
  resolved = false;
  /** Why the exchange ended, for its access-log record. */
  outcome = "done";
  /** conn.bytesIn/bytesOut when the previous exchange ended: this one's bytes are the difference. */
  bytesInBefore = 0;
  bytesOutBefore = 0;

  constructor(readonly conn: Conn, readonly config: HttpListenerConfig, head: RequestHead) {
    this.currentHead = head;
    this.freeHeads = freeRequestHeads(config);
    this.inbuf = new ByteQueue(config.maxHeaderBytes + MAX_READ_BYTES, "request_buffer_overflow");
    const ip = parseIp(conn.clientIp);
    this.trustedPeer = ip !== null && config.trustedProxies.length > 0 && trustedSet(config).contains(ip);
  }

  /** The current request's head; an idle connection holds none, the next request takes one. */
  get head(): RequestHead {
    return (this.currentHead ??= takeRequestHead(this.config, this.freeHeads));
  }

  /** Idle (no head being read, none answered): give the head back. */
  releaseHead(): void {
    if (this.currentHead === null) return;
    giveRequestHead(this.freeHeads, this.currentHead);
    this.currentHead = null;
  }

  // ─── client side ───────────────────────────────────────────────────────────────────────────────

  /** Take over from the sniff stage, whose head (already parsed over `first`) is the first request. */
  start(first: Uint8Array): void {
    this.conn.bytesIn += first.length; // read by the sniff stage, which counts nothing itself
    this.inbuf.push(first);
    this.headSince = this.conn.startedAt;
    watch(this);
    this.headParsed();
  }

  clientData(chunk: Uint8Array): void {
    const conn = this.conn;
    conn.lastActive = performance.now();
    conn.bytesIn += chunk.length;
    if (this.phase === Phase.CLOSING) return; // nothing more is read from a connection that ends
    if (this.phase === Phase.TUNNEL) return tunnelClientData(this, chunk);
    if (this.phase === Phase.HEAD && this.inbuf.size === 0) this.headSince = conn.lastActive;
    if (!this.inbuf.push(chunk)) return this.refuse(413, "request_buffer_overflow");
    if (this.phase === Phase.HEAD) return this.readHead();
    if (!this.requestDone) return this.pumpRequestBody();
    // A pipelined request waits for this one's answer; past one head's worth, the client is not read on.
    if (this.inbuf.size > this.config.maxHeaderBytes) this.pauseClient();
  }

  /** Parse what inbuf holds as the next request head. */
  readHead(): void {
    if (this.inbuf.size === 0) return;
    const r = parseRequestHead(this.inbuf.bytes(), 0, this.head, this.resume);
    if (r.kind === "need-more") {
      this.resume = r.resume;
      this.resumeClient();
      return;
    }
    this.resume = 0;
    if (r.kind === "error") return this.refuse(r.status, r.reason);
    this.headParsed();
  }

  /** A whole request head is in `this.head`, over inbuf's bytes from 0. */
  headParsed(): void {
    const conn = this.conn, head = this.head, facts = conn.facts!;
    this.phase = Phase.EXCHANGE;
    this.requestStart = performance.now();
    this.method = head.method;
    facts.method = head.method;
    if (!head.hostIs(this.rawHost)) {
      this.rawHost = head.host();
      this.routeHost = normaliseHost(this.rawHost);
    }
    if (!head.pathIs(this.path)) this.path = head.path();
    facts.host = this.routeHost;
    facts.path = this.path;
    this.resetExchange();
    this.requestKind = requestBody(head);
    this.requestDone = this.requestKind === "none";
    this.requestLeft = this.requestKind === "length" ? head.contentLength : 0;
    if (this.requestKind === "chunked") (this.requestFramer ??= new ChunkedFramer()).reset();
    this.closeAfter = !head.keepAlive || this.retiring;
    // An upgrade is forwarded (tunnel.ts) when it is HTTP/1.1 and has no body; otherwise say so rather than pass or hang.
    this.upgrading = forwardsAsUpgrade(this);
    if (head.isUpgrade && !this.upgrading) return this.refuse(501, "upgrade_not_supported");
    if (head.method === "CONNECT") return this.refuse(501, "connect_not_supported");
    if (conn.listener.state.resolver) return resolveRequest(this); // per request: it sees host, path, method
    this.routeByTable();
  }

  /** The listener's route table decides (no resolver, or it answered null). */
  routeByTable(): void {
    const conn = this.conn, head = this.head, facts = conn.facts!;
    const route = conn.listener.table.match(conn.clientIp, facts);
    this.route = route;
    if (!route) return this.answer(this.config.notFound?.status ?? 404, notFoundResponse(this.config, this.templateValues(), this.answerCloses(), this.method === "HEAD"), "no_route");
    if (route.gate.admit() === "routeRateLimited") return this.answer(429, errorResponse(429, "route_rate_limited", this.answerCloses(), this.method === "HEAD"), "route_rate_limited");
    const http = route.config.http;
    if (http?.drop) {
      this.outcome = "dropped";
      this.status = 0;
      this.finishExchange();
      return abort(conn, "dropped");
    }
    const headRequest = head.method === "HEAD";
    if (route.config.respond) {
      const r = route.config.respond;
      return this.answer(r.status, respondResponse(r, this.templateValues(), this.answerCloses(), headRequest), "responded");
    }
    if (http?.redirect) {
      return this.answer(http.redirect.status, redirectResponse(http.redirect.status, http.redirect.location, this.templateValues(), this.answerCloses(), headRequest), "redirected");
    }
    this.forward(route);
  }

  /** An answer of ours ends the connection when the request has a body we would have to skip, or the client asked. */
  answerCloses(): boolean {
    if (!this.requestDone) this.closeAfter = true;
    return this.closeAfter;
  }

  templateValues(): TemplateValues {
    return { host: this.conn.facts!.host ?? "", path: this.conn.facts!.path ?? "", client: this.conn.clientIp };
  }

  /**
   * Answer the current request ourselves: the head (and any body bytes already here) is consumed;
   * the connection goes on unless `closeAfter` (set by answerCloses, or for refusals).
   */
  answer(status: number, bytes: Uint8Array, outcome: string): void {
    if (!this.requestDone) this.closeAfter = true;
    this.inbuf.consume(Math.min(this.head.consumed, this.inbuf.size));
    this.status = status;
    this.outcome = outcome;
    this.writeClient(bytes);
    this.responseState = Response.DONE;
    this.requestDone = true;
    this.exchangeDone();
  }

  /** A refusal (bad request, limits, timeouts, upstream failures): answer if nothing was sent yet, and close. */
  refuse(status: number, reason: string): void {
    this.closeAfter = true;
    if (this.phase !== Phase.EXCHANGE) {
      // A head refused before it was whole: the record still says what was refused, and when.
      this.resetExchange();
      this.method = "";
      this.requestStart = performance.now();
    }
    if (this.responseBytes > 0) {
      // Part of a response went out: the client can only learn of the failure by the connection's end.
      this.outcome = reason;
      this.finishExchange();
      return abort(this.conn, reason);
    }
    this.phase = Phase.EXCHANGE;
    this.status = status;
    this.outcome = reason;
    this.inbuf.clear();
    this.writeClient(errorResponse(status, reason, true, this.method === "HEAD"));
    this.responseState = Response.DONE;
    this.requestDone = true;
    this.exchangeDone();
  }

  clientDrain(): void {
    if (this.phase === Phase.TUNNEL) return tunnelClientDrain(this);
    if (!this.flushClient()) return;
    if (this.phase === Phase.CLOSING) return this.endClient();
    if (this.responseState === Response.BODY && this.link) resumeLink(this.link);
  }

  /** The client's FIN: a request cut short ends the exchange; between requests, the connection. */
  clientEnd(): void {
    if (this.phase === Phase.TUNNEL) return tunnelClientEnd(this);
    if (this.phase === Phase.HEAD) return abort(this.conn, this.inbuf.size > 0 ? "incomplete_request" : "client_closed");
    if (!this.requestDone) {
      this.outcome = "client_closed_in_request";
      this.finishExchange();
      return abort(this.conn, "client_closed_in_request");
    }
    // Half-closed after a whole request: answer it, then close.
    this.closeAfter = true;
  }

  /** The client socket closed (after our end, an abort, or the peer's reset). */
  clientClosed(): void {
    unwatch(this);
    if (stagedBy === this) {
      staged = 0;
      stagedBy = null;
    }
    if ((this.phase === Phase.EXCHANGE || this.phase === Phase.TUNNEL) && this.link) {
      if (this.phase === Phase.EXCHANGE) this.outcome = this.outcome === "done" ? "client_closed" : this.outcome;
      this.finishExchange();
    }
    abort(this.conn, this.phase === Phase.CLOSING ? "done" : "client_closed");
    this.releaseHead();
  }

  /**
   * The configuration is retired (reload, drain): between requests, close now; while a head is being
   * read or a request answered, after that answer (Connection: close on it, unless its head went out
   * already; the connection's end still tells the client).
   */
  retire(): void {
    this.retiring = true;
    if (this.phase === Phase.HEAD && this.inbuf.size === 0) {
      unwatch(this);
      return abort(this.conn, "drained_idle");
    }
    if (this.phase === Phase.EXCHANGE) this.closeAfter = true;
  }

  /** Pause and resume only on a change: each is a system call (epoll) in Bun. */
  pauseClient(): void {
    if (this.clientPaused) return;
    this.clientPaused = true;
    this.conn.client.pause();
  }

  resumeClient(): void {
    if (!this.clientPaused) return;
    this.clientPaused = false;
    this.conn.client.resume();
  }

  writeClient(bytes: Uint8Array): boolean {
    if (stagedBy === this) this.flushStage(); // what was staged goes first
    const client = this.conn.client;
    this.conn.bytesOut += bytes.length;
    this.responseBytes += bytes.length;
    if (this.clientOut.size > 0) {
      if (!this.clientOut.push(bytes)) abort(this.conn, this.clientOut.limitReason);
      return false;
    }
    const n = client.write(bytes);
    if (n < bytes.length) {
      this.clientOut.push(n > 0 ? bytes.subarray(n) : bytes);
      return false;
    }
    return true;
  }

  flushClient(): boolean {
    const client = this.conn.client;
    for (let chunk = this.clientOut.peek(); chunk !== null; chunk = this.clientOut.peek()) {
      const n = client.write(chunk);
      if (n > 0) this.clientOut.consume(n);
      if (n < chunk.length) return false;
    }
    return true;
  }

  /**
   * Bytes of the response for the client, gathered in STAGE while an upstream event is handled, so that
   * a head and the body bytes that came with it leave in one send (a send on loopback costs about as
   * much as all the rest of a small request's work). upstreamData flushes after each event. Only bytes
   * that can join staged ones are copied: a body read on its own is written as it is. False when the
   * client socket is behind (the caller pauses the upstream).
   */
  stageClient(bytes: Uint8Array, s: number, e: number): boolean {
    if (stagedBy !== this && stagedBy !== null) stagedBy.flushStage();
    const n = e - s;
    if (n === 0) return this.clientOut.size === 0;
    if (this.clientOut.size > 0 || n > STAGE.length - staged || staged === 0) {
      return this.writeClient(s === 0 && e === bytes.length ? bytes : bytes.subarray(s, e));
    }
    staged = copyRange(STAGE, staged, bytes, s, e);
    stagedBy = this;
    this.conn.bytesOut += n;
    this.responseBytes += n;
    return true;
  }

  /** A head written straight into STAGE (no copy of its own); false when the client socket is behind. */
  stageHead(head: ResponseHead, edits: HeadEdits): boolean {
    if (stagedBy !== this && stagedBy !== null) stagedBy.flushStage();
    let end = serializeHeadInto(head, edits, STAGE, staged);
    if (end < 0) {
      this.flushStage();
      end = serializeHeadInto(head, edits, STAGE, 0); // STAGE holds the largest response head allowed
    }
    const n = end - staged;
    staged = end;
    stagedBy = this;
    this.conn.bytesOut += n;
    this.responseBytes += n;
    return this.clientOut.size === 0;
  }

  /**
   * A response whose head needs no more than lines left out (an HTTP/1.1 client on a keep-alive
   * connection: the usual case) and whose body is all in `bytes` after it: the head is compacted
   * inside the received chunk up to its body, and head and body go out in one write straight from
   * it, with no copy. Returns the index after the response, or -1 (nothing done) when that cannot be.
   */
  wholeResponseInPlace(bytes: Uint8Array, at: number): number {
    const res = this.response!;
    if (staged > 0 || this.clientOut.size > 0 || this.responseEdits !== NO_EDITS) return -1;
    const kind = this.responseKind;
    const body = kind === "length" ? this.responseLeft : kind === "none" ? 0 : -1;
    if (body < 0 || bytes.length - at < body) return -1;
    const start = compactInPlace(res, NO_EDITS);
    if (start < 0) return -1;
    const end = at + body;
    this.responseLeft = 0;
    const n = end - start;
    this.conn.bytesOut += n;
    this.responseBytes += n;
    const w = this.conn.client.write(bytes, start, n);
    if (w < n) {
      if (!this.clientOut.push(bytes.slice(w > 0 ? start + w : start, end))) abort(this.conn, this.clientOut.limitReason);
      if (this.link) pauseLink(this.link);
    }
    return end;
  }

  /** Write what is staged; false when the socket did not take it all (the rest waits in clientOut). */
  flushStage(): boolean {
    if (stagedBy !== this) return this.clientOut.size === 0;
    const n = staged;
    staged = 0;
    stagedBy = null;
    if (n === 0 || (this.conn.flags & FINISHED) !== 0) return true;
    if (this.clientOut.size > 0) {
      this.clientOut.push(STAGE.slice(0, n));
      return false;
    }
    const w = this.conn.client.write(STAGE, 0, n);
    if (w < n) {
      if (!this.clientOut.push(STAGE.slice(w > 0 ? w : 0, n))) abort(this.conn, this.clientOut.limitReason);
      return false;
    }
    return true;
  }

  endClient(): void {
    if (stagedBy === this) this.flushStage();
    if (this.clientOut.size > 0) return; // clientDrain ends it once flushed
    this.conn.because("done");
    this.conn.client.end();
  }

  // ─── forwarding ────────────────────────────────────────────────────────────────────────────────

  forward(route: RouteRuntime): void {
    const i = route.balancer.pick();
    this.upstreamIndex = i;
    this.conn.upstreamText = route.config.upstreams[i]!.text;
    this.pool = poolOf(route, i);
    this.sendRequest();
  }

  /** The resolver module chose `endpoint` for this request. */
  forwardResolved(endpoint: string): void {
    this.resolved = true;
    this.conn.upstreamText = endpoint;
    this.pool = resolvedPool(this.conn.listener, endpoint);
    this.sendRequest();
  }

  /** The resolver refused the request: answered in HTTP terms, the reason in the body and the log. */
  refuseResolved(status: number, reason: string, message: string): void {
    this.answer(status, errorResponse(status, message ? `${reason}: ${message}` : reason, this.answerCloses(), this.method === "HEAD"), reason);
  }

  /** Send the request over a pooled connection of this.pool's upstream, or a new one (send serializes the head). */
  sendRequest(): void {
    const head = this.head;
    // The head's bytes stay valid after this (nothing writes into them, and the head is not parsed
    // again before the exchange ends): send() serializes from them, again for a retry.
    this.inbuf.consume(head.consumed);
    const link = this.pool!.take(this);
    if (link) {
      this.reused = true;
      return this.send(link);
    }
    this.dial();
  }

  /** Connect to the exchange's upstream: the route's (checked once, when literal) or the resolver's (SSRF-checked). */
  dial(): void {
    const route = this.route;
    const known = route ? route.targets[this.upstreamIndex] : null;
    if (known) {
      if (known.ok) return this.connect(known.target);
      return this.refuse(502, known.reason);
    }
    const policy = { fromOperator: route !== null, skipValidation: this.conn.listener.config.skipValidation };
    const session = this, asked = this.requestStart;
    resolveEndpoint(this.conn.upstreamText!, policy).then(function endpointResolved(r) {
      if (session.phase !== Phase.EXCHANGE || session.requestStart !== asked) return;
      if (r.ok) session.connect(r.target);
      else session.refuse(502, r.reason);
    });
  }

  connect(target: DialTarget): void {
    this.reused = false;
    this.send(this.pool!.dial(target, this));
  }

  /**
   * Send the head (queued while the link connects), with as much of a Content-Length body as is here
   * in the same write (serialized into REQUEST_STAGE: no allocation), then the rest of the body.
   */
  send(link: UpstreamLink): void {
    this.link = link;
    this.conn.upstreamAddr = link.addr;
    this.sentAt = performance.now();
    let edits = requestEdits(this.route, this.config, this.head.minorVersion, this.forwardedFields());
    if (this.upgrading) edits = withUpgrade(edits);
    let end = serializeHeadInto(this.head, edits, REQUEST_STAGE, 0);
    if (end < 0) {
      link.write(serializeHead(this.head, edits)); // a head longer than REQUEST_STAGE (a huge X-Forwarded-For): its own array
    } else {
      if (this.requestKind === "length" && this.inbuf.size > 0) {
        const bytes = this.inbuf.bytes();
        const n = Math.min(this.requestLeft, bytes.length, REQUEST_STAGE.length - end);
        REQUEST_STAGE.set(n === bytes.length ? bytes : bytes.subarray(0, n), end);
        end += n;
        this.inbuf.consume(n);
        this.requestLeft -= n;
        if (this.requestLeft === 0) this.requestDone = true;
      }
      link.write(REQUEST_STAGE.subarray(0, end), true); // a short write pauses the client in pumpRequestBody
    }
    if (!this.requestDone) this.pumpRequestBody();
  }

  /** The X-Forwarded-* fields of the current request (made again only when they can differ), or null. */
  forwardedFields(): FieldEdit[] | null {
    const mode = this.config.forwarded;
    if (mode === "off") return null;
    const conn = this.conn;
    const proto = conn.facts!.tls === "terminate" ? "https" : "http";
    if (this.trustedPeer) return forwardedEdits(this.head, mode, conn.clientIp, true, proto);
    // From an untrusted peer they depend only on its address, the connection's TLS and the host.
    if (this.forwardedFor === null || this.forwardedHost !== this.rawHost) {
      this.forwardedFor = forwardedEdits(this.head, mode, conn.clientIp, false, proto);
      this.forwardedHost = this.rawHost;
    }
    return this.forwardedFor;
  }

  upstreamOpen(link: UpstreamLink): void {
    if (link !== this.link) return;
    this.sentAt = performance.now(); // the route's timeout counts from the request reaching the socket
    if (link.flush() && !this.requestDone) this.pumpRequestBody();
  }

  /** Hand the body bytes in inbuf to the upstream, as far as they are framed. */
  pumpRequestBody(): void {
    const link = this.link;
    if (!link) return this.pauseClient(); // still resolving: the bytes wait in inbuf, the rest in the kernel
    while (!this.requestDone && this.inbuf.size > 0) {
      const bytes = this.inbuf.bytes();
      let n: number;
      if (this.requestKind === "length") {
        n = Math.min(this.requestLeft, bytes.length);
        this.requestLeft -= n;
        if (this.requestLeft === 0) this.requestDone = true;
      } else {
        const r = this.requestFramer!.feed(bytes, 0, bytes.length);
        if (r.kind === "error") return this.refuse(400, r.reason);
        n = r.consumed;
        if (r.kind === "done") this.requestDone = true;
        else if (n === 0) break; // an unfinished chunk line: wait for the rest
      }
      const all = link.write(n === bytes.length ? bytes : bytes.subarray(0, n));
      this.inbuf.consume(n);
      if (!all) {
        this.pauseClient();
        return;
      }
    }
    // Once the body is done the client stays readable: a pipelined request waits in inbuf (clientData
    // bounds it). Pausing and resuming per request would cost two system calls each time.
    if (this.requestDone) {
      if (this.responseState === Response.DONE) this.exchangeDone();
    } else {
      this.resumeClient();
    }
  }

  upstreamDrain(link: UpstreamLink): void {
    if (link !== this.link) return;
    if (this.phase === Phase.TUNNEL) return tunnelUpstreamDrain(this, link);
    if (link.flush() && !this.requestDone) {
      this.pumpRequestBody();
    }
  }

  upstreamData(link: UpstreamLink, chunk: Uint8Array): void {
    if (link !== this.link) return;
    this.conn.lastActive = performance.now();
    if (this.phase === Phase.TUNNEL) return tunnelUpstreamData(this, link, chunk);
    if (!this.upbuf.push(chunk)) return this.upstreamFailed("response_head_too_large");
    this.pumpResponse();
    if (stagedBy === this && !this.flushStage() && this.link === link) pauseLink(link);
  }

  /**
   * Parse response heads and hand the body on, as far as the bytes in upbuf go. Works over one view of
   * upbuf with an offset, consumed once before anything that can end the exchange (and at the end), so
   * a head and its body out of one chunk cost no sub-view (see copy-range.ts).
   */
  pumpResponse(): void {
    const link = this.link!;
    const upbuf = this.upbuf;
    let bytes = upbuf.bytes();
    let at = 0;
    while (at < bytes.length && this.link === link) {
      if (this.responseState === Response.HEAD) {
        if (at > 0) {
          // A head after an interim response: parsed from 0, where a need-more can resume it.
          upbuf.consume(at);
          bytes = upbuf.bytes();
          at = 0;
        }
        const r = parseResponseHead(bytes, 0, (this.response ??= takeResponseHead()), this.responseResume);
        if (r.kind === "need-more") {
          this.responseResume = r.resume;
          return;
        }
        this.responseResume = 0;
        if (r.kind === "error") return this.upstreamFailed(`bad_response_${r.reason}`);
        at = r.consumed;
        const bodyFollows = this.responseHead();
        if (this.phase === Phase.TUNNEL) return; // a 101: tunnel.ts took upbuf's bytes, head and all
        if ((this.responseState as Response) === Response.BODY) {
          const end = this.wholeResponseInPlace(bytes, at);
          if (end >= 0) {
            upbuf.consume(end);
            this.responseEnded();
            bytes = upbuf.bytes();
            at = 0;
            continue;
          }
          // Staged (not sent): the body bytes that came with the head join it in one write.
          if (!this.stageHead(this.response!, this.responseEdits) && this.link) pauseLink(this.link);
        }
        if (!bodyFollows) {
          upbuf.consume(at);
          this.responseEnded();
          bytes = upbuf.bytes();
          at = 0;
        }
        continue;
      }
      if (this.responseState === Response.DONE) {
        // Bytes after the response's end: the upstream is out of step; the link is not reused.
        this.upstreamReusable = false;
        upbuf.clear();
        return;
      }
      let n: number;
      let ended = false;
      if (this.responseKind === "length") {
        n = Math.min(this.responseLeft, bytes.length - at);
        this.responseLeft -= n;
        ended = this.responseLeft === 0;
      } else if (this.responseKind === "chunked") {
        const r = this.responseFramer!.feed(bytes, at, bytes.length);
        if (r.kind === "error") return this.upstreamFailed(`bad_response_${r.reason}`);
        n = r.consumed;
        ended = r.kind === "done";
        if (!ended && n === 0) break; // an unfinished chunk line: wait for the rest
      } else {
        n = bytes.length - at; // until close
      }
      const all = this.stageClient(bytes, at, at + n);
      at += n;
      if (!all) pauseLink(link);
      if (ended) {
        upbuf.consume(at);
        this.responseEnded();
        bytes = upbuf.bytes();
        at = 0;
      }
    }
    if (at > 0 && this.link === link) upbuf.consume(at);
  }

  /**
   * A whole response head is in `this.response` (the caller consumes its bytes and, for a final
   * response, writes it with `responseEdits`; an interim one is staged here). False when the response
   * ends with its head (no body): the caller ends it.
   */
  responseHead(): boolean {
    const res = this.response!;
    if (res.status >= 100 && res.status < 200) {
      // 101 answers an upgrade we forwarded (tunnel.ts); to anything else it is out of step.
      if (res.status === 101) {
        if (!(this.upgrading && startTunnel(this, this.link!))) this.upstreamFailed("unexpected_101");
        return true;
      }
      // 100 Continue, 103 Early Hints: relayed (RFC 9110 §15.2), except to an HTTP/1.0 client, which
      // must not be sent one; the final response follows.
      if (this.head.minorVersion !== 0) this.stageHead(res, NO_EDITS);
      return true;
    }
    this.status = res.status;
    this.upstreamMs = performance.now() - this.sentAt;
    this.responseKind = responseBody(res, this.method);
    this.upstreamReusable = res.keepAlive && this.responseKind !== "close" && !this.upgrading;
    if (this.responseKind === "close" || !this.requestDone) this.closeAfter = true;
    const edits = responseEdits(this.closeAfter
      ? CLOSE_EDITS
      : this.head.minorVersion === 0 ? KEEP_ALIVE_EDITS : NO_EDITS, this.route, this.config, res.minorVersion);
    this.responseEdits = edits; // pumpResponse writes the head
    this.responseState = Response.BODY;
    this.responseLeft = this.responseKind === "length" ? res.contentLength : 0;
    if (this.responseKind === "chunked") (this.responseFramer ??= new ChunkedFramer()).reset();
    return this.responseKind !== "none";
  }

  responseEnded(): void {
    this.responseState = Response.DONE;
    if (this.upbuf.size > 0) this.upstreamReusable = false;
    // A response that ends before its request's body: the upstream has not read it all, the link is done.
    if (!this.requestDone) {
      this.upstreamReusable = false;
      this.closeAfter = true;
      this.requestDone = true;
    }
    this.exchangeDone();
  }

  upstreamGone(link: UpstreamLink, connectFailed: boolean): void {
    if (link !== this.link) return;
    const pool = this.pool!;
    this.link = null;
    pool.discard(link);
    if (this.phase === Phase.TUNNEL) return tunnelUpstreamGone(this);
    if (this.responseState === Response.BODY && this.responseKind === "close") {
      this.upstreamReusable = false;
      return this.responseEnded();
    }
    if (this.responseState === Response.DONE) return;
    // A pooled connection the upstream closed while it was idle (it had not seen this request):
    // send again once, on a new connection, if that cannot repeat an effect (idempotent, no body).
    const nothingBack = this.responseBytes === 0 && this.upbuf.size === 0 && this.responseState === Response.HEAD;
    if (this.reused && nothingBack && !this.retried && this.requestKind === "none" && IDEMPOTENT.has(this.method)) {
      this.retried = true;
      return this.dial();
    }
    this.upstreamFailed(connectFailed ? "connect_failed" : this.responseState === Response.HEAD ? "upstream_closed" : "upstream_closed_mid_response");
  }

  /** The upstream failed this exchange: 502 if nothing went to the client yet, else close. */
  upstreamFailed(reason: string, status = 502): void {
    const link = this.link;
    if (link) {
      this.link = null;
      this.pool!.discard(link);
    }
    this.upstreamReusable = false;
    this.refuse(status, reason);
  }

  /** The sweeper: the route's timeoutMs (waiting for the response head) or connectTimeoutMs (dialling). */
  checkUpstreamTimeout(now: number): void {
    const link = this.link;
    if (this.phase !== Phase.EXCHANGE || this.responseState !== Response.HEAD || !link) return;
    if (link.dialingSince > 0) {
      if (now - link.dialingSince > this.conn.listener.config.connectTimeoutMs) this.upstreamFailed("connect_timeout", 504);
      return;
    }
    const timeout = this.route?.config.http?.timeoutMs ?? 30_000;
    if (now - this.sentAt > timeout) this.upstreamFailed("upstream_timeout", 504);
  }

  // ─── the end of an exchange ────────────────────────────────────────────────────────────────────

  /** Both directions are done (or the answer is ours): give the link back, log, go on or close. */
  exchangeDone(): void {
    if (!this.requestDone || this.responseState !== Response.DONE || this.phase !== Phase.EXCHANGE) return;
    this.finishExchange();
    if (this.closeAfter) {
      this.phase = Phase.CLOSING;
      this.pauseClient();
      return this.endClient();
    }
    this.phase = Phase.HEAD;
    this.idleSince = performance.now();
    this.headSince = this.idleSince;
    this.resumeClient();
    if (this.inbuf.size > 0) this.readHead();
    else this.releaseHead();
  }

  /** Release what the exchange holds and write its access-log record (once). */
  finishExchange(): void {
    const link = this.link;
    if (link) {
      this.link = null;
      if (this.upstreamReusable && this.responseState === Response.DONE && this.requestDone) {
        resumeLink(link); // paused if the client fell behind on the last bytes
        this.pool!.put(link);
      } else {
        this.pool!.discard(link);
      }
    }
    if (this.response) {
      FREE_RESPONSE_HEADS.push(this.response);
      this.response = null;
    }
    if (this.upstreamIndex >= 0) this.route?.balancer.release(this.upstreamIndex);
    this.upstreamIndex = -1;
    if (this.requestStart > 0) {
      logExchange(this);
      countExchange(this.conn.listener, this.route, this.resolved, this.status, this.upstreamMs);
    }
    this.requestStart = 0;
    this.bytesInBefore = this.conn.bytesIn;
    this.bytesOutBefore = this.conn.bytesOut;
  }

  /** A 101 switched the connection to a tunnel: no request timeout, no more heads (tunnel.ts). */
  enterTunnel(): void {
    this.phase = Phase.TUNNEL;
    this.responseState = Response.BODY;
    this.requestDone = true;
    this.tunnelClientEnded = false;
  }

  /** The tunnel ended: what waits for the client is written, then the connection ends. */
  leaveTunnel(): void {
    this.phase = Phase.CLOSING;
    this.pauseClient();
  }

  resetExchange(): void {
    this.route = null;
    this.pool = null;
    this.responseState = Response.HEAD;
    this.responseKind = "none";
    this.responseBytes = 0;
    this.upstreamReusable = false;
    this.status = 0;
    this.upstreamMs = null;
    this.reused = false;
    this.retried = false;
    this.resolved = false;
    this.outcome = "done";
    this.upbuf.clear();
    this.responseResume = 0;
    this.conn.upstreamText = null;
    this.conn.upstreamAddr = null;
  }
}

/**
 * Client-bound bytes of the upstream event being handled (see stageClient): one buffer for the
 * process, as events are handled one at a time; big enough for the largest response head allowed
 * (RESPONSE_LIMITS) plus edits. A body chunk is copied in only to join what is staged.
 */
const STAGE = new Uint8Array(RESPONSE_LIMITS.maxHeaderBytes + 32 * 1024);

/**
 * A request head on its way upstream, with the body bytes that join it (see send). Heads longer
 * than this (a maxHeaderBytes near its bound plus a long X-Forwarded-For) get an array of their own.
 */
const REQUEST_STAGE = new Uint8Array(64 * 1024);
let staged = 0;
let stagedBy: HttpSession | null = null;

/** Response heads not in use (each holds its field offsets: a few KiB), shared by every session. */
const FREE_RESPONSE_HEADS: ResponseHead[] = [];

function takeResponseHead(): ResponseHead {
  return FREE_RESPONSE_HEADS.pop() ?? new ResponseHead(RESPONSE_LIMITS);
}

/** trustedProxies as a set, made once per listener configuration. */
const TRUSTED = new WeakMap<HttpListenerConfig, CidrSet>();

function trustedSet(config: HttpListenerConfig): CidrSet {
  let set = TRUSTED.get(config);
  if (!set) TRUSTED.set(config, (set = new CidrSet(config.trustedProxies)));
  return set;
}

function pauseLink(link: UpstreamLink): void {
  if (link.paused || !link.socket) return;
  link.paused = true;
  link.socket.pause();
}

function resumeLink(link: UpstreamLink): void {
  if (!link.paused || !link.socket) return;
  link.paused = false;
  link.socket.resume();
}

const CLOSE_EDITS: HeadEdits = { add: [["Connection", "close"]] };
const KEEP_ALIVE_EDITS: HeadEdits = { add: [["Connection", "keep-alive"]] };
const NO_EDITS: HeadEdits = {};
