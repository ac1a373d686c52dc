//! The splice relay engine: native threads, each with its own epoll, move the bytes of connected
//! socket pairs with splice(2) through a pipe per direction, so they never enter the JS heap.
//!
//! - JS hands over a pair with `add(fd_a, fd_b, idle_ms, id)`. The fds are dup'ed: Bun keeps owning
//!   (and later closing) its own fds; the engine closes only its duplicates. The dup is needed, not
//!   a convenience: Bun does not leave a paused socket alone. When a peer's RST arrives (EPOLLERR),
//!   Bun 1.4.5 reads what is left, fires its close handler and close()s its fd on its own, before the
//!   engine has reported the pair (checked: a paused Bun.listen socket, the peer calls terminate(),
//!   the fd is gone from /proc/self/fd within milliseconds). Without its own reference the engine would
//!   be left with a bare number that Bun's next accept or connect can reuse: a pending splice, or the
//!   other side's next bytes, would then go into a stranger's connection. The dup pins the socket until
//!   the engine is done with it. Cost: 2 fds per pair on top of Bun's 2.
//! - Pipes on demand: a direction takes a pipe from its worker's pool only when it has bytes to move
//!   and gives it back as soon as the pipe is empty again, so an idle pair holds no pipe (a pipe is
//!   2 fds and a pipe buffer). A pipe that still holds bytes (slow destination) stays with its
//!   direction: one pipe per stalled direction, bounded by the pipe size. The pool keeps at most
//!   POOL_MAX spare pipes per worker and closes the rest. If no pipe can be made (EMFILE), the pair
//!   waits and is retried by the 25 ms sweep.
//! - Empty-pipe invariant: a direction reads from its source only when its pipe is empty, so EAGAIN
//!   from socket->pipe always means "the socket has nothing", and from pipe->socket "the socket is full".
//! - Batching: each segment a source receives raises EPOLLIN, and on loopback a bulk writer's every
//!   64 KiB write wakes this thread (an IPI to its CPU for the writer, a context switch here), only
//!   to move those 64 KiB. A direction that streams (1 MiB one way with nothing coming back, and
//!   its source found empty twice within BATCH_NS with at least BATCH_MIN taken in between) turns
//!   EPOLLIN off on its source and reads it every BATCH_NS instead, while each read takes at least
//!   BATCH_MIN and nothing comes back; otherwise EPOLLIN is back on. EPOLLRDHUP, errors and EPOLLOUT
//!   stay on throughout. Cost: bytes of a stream wait up to BATCH_NS (200 µs) longer once it has
//!   carried 1 MiB; request/response traffic never batches. Needs epoll_pwait2 (Linux 5.11).
//! - Half-close: EOF on a source becomes shutdown(SHUT_WR) on the destination once the pipe is drained.
//!   The pair completes when both directions have carried their FIN.
//! - Reset: ECONNRESET/EPIPE on one side sets SO_LINGER 0 on both sockets, so their last close (the
//!   engine's dups, then Bun's fds) sends RST to the other peer too.
//! - Idle timeout: no byte moved either way for idle_ms ms completes the pair (`idle_timeout`).
//! - Completions are records {id, bytes a->b, bytes b->a, reason, errno} in a queue that the caller
//!   drains with `poll` (JS polls it: threadsafe JS callbacks from foreign threads are not used).
const std = @import("std");
const linux = std.os.linux;
const sys = @import("sys.zig");
const completion = @import("completion.zig");
pub const Reason = completion.Reason;
pub const Record = completion.Record;
const Lock = sys.Lock;
const nowMs = sys.nowMs;
const nowNs = sys.nowNs;
const closeFd = sys.closeFd;
const negErrno = sys.negErrno;
const sockError = sys.sockError;
const tcpState = sys.tcpState;
const setLingerZero = sys.setLingerZero;
const TCP_CLOSE = sys.TCP_CLOSE;

const SPLICE_F_MOVE: usize = 1;
const SPLICE_F_NONBLOCK: usize = 2;
/// splice calls per direction per wake-up before the pair yields to others (fairness).
const BUDGET: u32 = 32;
/// Batching (module comment): a streaming direction reads its source every Engine.batch_ns
/// (BATCH_NS unless a test changes it) instead of on each arriving segment. Streaming: it has taken
/// STREAM_MIN bytes with none delivered the other way meanwhile (so request/response never batches),
/// at least BATCH_MIN since it last found the source empty, and it found the source empty again
/// within batch_ns (or it is batching already). Measured (bench/results/2026-11-30-bulk-splice.md):
/// 100 to 500 µs and 8 to 128 KiB all did about as well; 200 µs bounds the added latency.
const BATCH_NS: u64 = 200 * std.time.ns_per_us;
const BATCH_MIN: usize = 32 * 1024;
const STREAM_MIN: u64 = 1 << 20;
const MAX_EVENTS = 256;
/// Every socket's epoll interest besides EPOLLIN (which batching turns off and on): edge-triggered,
/// so an event means something new happened.
const EVENTS_ALWAYS: u32 = linux.EPOLL.OUT | linux.EPOLL.RDHUP | linux.EPOLL.ET;
/// Spare (empty) pipes each worker keeps for reuse; more are closed when given back.
pub const POOL_MAX = 64;

/// epoll_wait with a timeout in nanoseconds (Linux 5.11); no wrapper in std.os.linux.
fn epollPwait2(epfd: i32, events: *[MAX_EVENTS]linux.epoll_event, timeout: *const linux.timespec) usize {
    return linux.syscall6(.epoll_pwait2, @as(usize, @bitCast(@as(isize, epfd))), @intFromPtr(events), MAX_EVENTS, @intFromPtr(timeout), 0, 8);
}

fn splice(fd_in: i32, fd_out: i32, len: usize) usize {
    return linux.syscall6(.splice, @as(usize, @bitCast(@as(isize, fd_in))), 0, @as(usize, @bitCast(@as(isize, fd_out))), 0, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

/// The largest pipe this process may ask for: /proc/sys/fs/pipe-max-size (1 MiB by default).
pub fn pipeMaxSize() usize {
    const path = "/proc/sys/fs/pipe-max-size";
    const rc = linux.open(path, .{ .CLOEXEC = true }, 0);
    if (linux.errno(rc) != .SUCCESS) return 1 << 20;
    const fd: i32 = @intCast(rc);
    defer closeFd(fd);
    var buf: [32]u8 = undefined;
    const n = linux.read(fd, &buf, buf.len);
    if (linux.errno(n) != .SUCCESS) return 1 << 20;
    const text = std.mem.trim(u8, buf[0..n], " \n");
    return std.fmt.parseInt(usize, text, 10) catch (1 << 20);
}

const Pipe = struct { r: i32, w: i32, cap: usize };

const Dir = struct {
    src: i32,
    dst: i32,
    /// The pipe this direction holds while it has bytes to move (read end / write end; -1: none)
    /// and its capacity.
    pr: i32 = -1,
    pw: i32 = -1,
    cap: usize = 0,
    /// bytes sitting in the pipe (spliced in from src, not yet out to dst)
    in_pipe: usize = 0,
    /// bytes delivered to dst
    total: u64 = 0,
    eof: bool = false,
    shut: bool = false,
    /// Its pair (for the worker's batch list, which holds directions).
    pair: *Pair = undefined,
    /// Bytes taken from src since this direction last found it empty, and when that was (ns).
    batch: usize = 0,
    drained_ns: u64 = 0,
    /// Bytes taken from src since the other direction last delivered any (`other_mark`: its total then).
    one_way: u64 = 0,
    other_mark: u64 = 0,
    /// Batching: src's EPOLLIN is off; the direction reads again at `due_ns` (while on the batch
    /// list) or once its destination takes the pipe's bytes.
    batching: bool = false,
    listed: bool = false,
    due_ns: u64 = 0,
    next_due: ?*Dir = null,
    prev_due: ?*Dir = null,
};

const Outcome = enum { blocked, budget, finished, starved, src_reset, dst_reset, src_error, dst_error };

const Pair = struct {
    id: u64,
    fa: i32,
    fb: i32,
    ab: Dir,
    ba: Dir,
    idle_ms: i64,
    last_ms: i64,
    done: bool = false,
    err: u32 = 0,
    queued: bool = false,
    /// A direction needed a pipe and none could be made: the sweep tries again.
    starved: bool = false,
    worker: *Worker,
    // the worker's list of live pairs
    prev: ?*Pair = null,
    next: ?*Pair = null,
    // incoming queue / ready queue / free list (one at a time)
    link: ?*Pair = null,
    ready_next: ?*Pair = null,
};

const Worker = struct {
    engine: *Engine,
    epfd: i32 = -1,
    evfd: i32 = -1,
    thread: ?std.Thread = null,
    lock: Lock = .{},
    incoming: ?*Pair = null,
    live: ?*Pair = null,
    ready: ?*Pair = null,
    dead: ?*Pair = null,
    now: i64 = 0,
    now_ns: u64 = 0,
    next_sweep: i64 = 0,
    /// Batching directions in due order (all wait batch_ns, so appending keeps the order).
    due_head: ?*Dir = null,
    due_tail: ?*Dir = null,
    /// Spare pipes, all empty; only this worker's thread touches them.
    pool: [POOL_MAX]Pipe = undefined,
    pool_len: usize = 0,

    fn wake(self: *Worker) void {
        const one: u64 = 1;
        _ = linux.write(self.evfd, @ptrCast(&one), 8);
    }

    fn run(self: *Worker) void {
        var events: [MAX_EVENTS]linux.epoll_event = undefined;
        while (!@atomicLoad(bool, &self.engine.stopping, .acquire)) {
            const n = self.wait(&events);
            self.now_ns = nowNs();
            self.now = @intCast(self.now_ns / std.time.ns_per_ms);
            self.takeIncoming();
            for (events[0..n]) |ev| {
                const tag = ev.data.ptr;
                if (tag == 0) {
                    var v: u64 = 0;
                    _ = linux.read(self.evfd, @ptrCast(&v), 8);
                    continue;
                }
                const p: *Pair = @ptrFromInt(tag & ~@as(usize, 1));
                if (p.done) continue;
                const side_b = (tag & 1) == 1;
                // A reset first: pumping would turn it into an EOF and pass on a FIN instead.
                if (ev.events & linux.EPOLL.ERR != 0) self.socketError(p, side_b);
                if (p.done) continue;
                const readable = ev.events & (linux.EPOLL.IN | linux.EPOLL.RDHUP | linux.EPOLL.HUP | linux.EPOLL.ERR) != 0;
                const writable = ev.events & (linux.EPOLL.OUT | linux.EPOLL.HUP | linux.EPOLL.ERR) != 0;
                // A readable side pumps the direction it is the source of; a writable side the
                // direction it is the destination of, when that one has bytes waiting in its pipe.
                const toward = if (side_b) &p.ab else &p.ba;
                const pump_from = readable;
                const pump_toward = writable and toward.in_pipe > 0;
                if (side_b) self.pump(p, pump_toward, pump_from) else self.pump(p, pump_from, pump_toward);
            }
            var r = self.ready;
            self.ready = null;
            while (r) |p| {
                r = p.ready_next;
                p.queued = false;
                p.ready_next = null;
                if (!p.done) self.pump(p, true, true);
            }
            self.readDue();
            if (self.now >= self.next_sweep) {
                self.next_sweep = self.now + 25;
                self.sweep();
            }
            self.freeDead();
        }
        // Stopping: complete every live pair so the caller learns of each.
        self.takeIncoming();
        while (self.live) |p| self.complete(p, .shutdown, 0);
        self.freeDead();
        while (self.pool_len > 0) {
            self.pool_len -= 1;
            closeFd(self.pool[self.pool_len].r);
            closeFd(self.pool[self.pool_len].w);
            _ = @atomicRmw(i32, &self.engine.pipes_spare, .Sub, 1, .monotonic);
        }
    }

    /// Waits for events until the first batch read is due, at most 50 ms (the sweep's clock);
    /// returns how many events arrived.
    fn wait(self: *Worker, events: *[MAX_EVENTS]linux.epoll_event) usize {
        var ns: u64 = 50 * std.time.ns_per_ms;
        if (self.ready != null) ns = 0 else if (self.due_head) |d| ns = @min(ns, d.due_ns -| nowNs());
        const rc = if (self.engine.batching) blk: {
            const ts = linux.timespec{ .sec = @intCast(ns / std.time.ns_per_s), .nsec = @intCast(ns % std.time.ns_per_s) };
            break :blk epollPwait2(self.epfd, events, &ts);
        } else linux.epoll_wait(self.epfd, events, MAX_EVENTS, @intCast(ns / std.time.ns_per_ms));
        return if (linux.errno(rc) == .SUCCESS) rc else 0;
    }

    /// `d` found its source empty: a streaming direction turns its source's EPOLLIN off (or keeps
    /// it off) and reads again when its time comes; any other waits for EPOLLIN. A direction whose
    /// EPOLLIN stays off for any reason (EPOLL_CTL_MOD failed) keeps reading on the clock.
    fn drained(self: *Worker, p: *Pair, d: *Dir) void {
        const other = if (d == &p.ab) &p.ba else &p.ab;
        if (other.total != d.other_mark) {
            d.one_way = 0;
            d.other_mark = other.total;
        }
        d.one_way += d.batch;
        const streaming = self.engine.batching and d.one_way >= STREAM_MIN and d.batch >= BATCH_MIN and
            (d.batching or self.now_ns -| d.drained_ns < self.engine.batch_ns);
        d.batch = 0;
        d.drained_ns = self.now_ns;
        if (streaming != d.batching) self.watchSource(p, d, !streaming);
        if (!d.batching) self.unschedule(d) else if (!d.listed) self.schedule(d);
    }

    /// EPOLLIN on `d`'s source on or off (EPOLLOUT, for the other direction, and EPOLLRDHUP stay).
    /// EPOLL_CTL_MOD polls the socket again, so bytes that arrived meanwhile raise an event at once.
    fn watchSource(self: *Worker, p: *Pair, d: *Dir, on: bool) void {
        const in: u32 = if (on) linux.EPOLL.IN else 0;
        var ev = linux.epoll_event{ .events = in | EVENTS_ALWAYS, .data = .{ .ptr = @intFromPtr(p) | @intFromBool(d == &p.ba) } };
        if (linux.errno(linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_MOD, d.src, &ev)) == .SUCCESS) d.batching = !on;
    }

    fn schedule(self: *Worker, d: *Dir) void {
        d.listed = true;
        d.due_ns = self.now_ns + self.engine.batch_ns;
        d.next_due = null;
        d.prev_due = self.due_tail;
        if (self.due_tail) |t| t.next_due = d else self.due_head = d;
        self.due_tail = d;
    }

    fn unschedule(self: *Worker, d: *Dir) void {
        if (!d.listed) return;
        d.listed = false;
        if (d.prev_due) |pv| pv.next_due = d.next_due else self.due_head = d.next_due;
        if (d.next_due) |nx| nx.prev_due = d.prev_due else self.due_tail = d.prev_due;
        d.next_due = null;
        d.prev_due = null;
    }

    /// Batch reads whose time has come.
    fn readDue(self: *Worker) void {
        while (self.due_head) |d| {
            if (d.due_ns > self.now_ns) return;
            self.unschedule(d);
            _ = @atomicRmw(u64, &self.engine.batch_reads, .Add, 1, .monotonic);
            const p = d.pair;
            if (!p.done) self.pump(p, d == &p.ab, d == &p.ba);
        }
    }

    /// Give `d` a pipe: a spare one, else a new one. False when none can be made (EMFILE, ENFILE).
    fn takePipe(self: *Worker, d: *Dir) bool {
        const pipe = if (self.pool_len > 0) blk: {
            self.pool_len -= 1;
            _ = @atomicRmw(i32, &self.engine.pipes_spare, .Sub, 1, .monotonic);
            break :blk self.pool[self.pool_len];
        } else self.engine.newPipe() orelse return false;
        d.pr = pipe.r;
        d.pw = pipe.w;
        d.cap = pipe.cap;
        _ = @atomicRmw(i32, &self.engine.pipes_in_use, .Add, 1, .monotonic);
        return true;
    }

    /// Take `d`'s pipe back: into the pool when it is empty and the pool has room, else closed
    /// (a pipe with bytes in it is only given up when its pair completes: the bytes go with it).
    fn releasePipe(self: *Worker, d: *Dir) void {
        if (d.pr < 0) return;
        if (d.in_pipe == 0 and self.pool_len < POOL_MAX) {
            self.pool[self.pool_len] = .{ .r = d.pr, .w = d.pw, .cap = d.cap };
            self.pool_len += 1;
            _ = @atomicRmw(i32, &self.engine.pipes_spare, .Add, 1, .monotonic);
        } else {
            closeFd(d.pr);
            closeFd(d.pw);
        }
        d.pr = -1;
        d.pw = -1;
        d.cap = 0;
        _ = @atomicRmw(i32, &self.engine.pipes_in_use, .Sub, 1, .monotonic);
    }

    fn takeIncoming(self: *Worker) void {
        self.lock.lock();
        var list = self.incoming;
        self.incoming = null;
        self.lock.unlock();
        while (list) |p| {
            list = p.link;
            p.link = null;
            p.last_ms = self.now;
            p.next = self.live;
            if (self.live) |h| h.prev = p;
            self.live = p;
            var ev = linux.epoll_event{ .events = linux.EPOLL.IN | EVENTS_ALWAYS, .data = .{ .ptr = @intFromPtr(p) } };
            var rc = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_ADD, p.fa, &ev);
            if (linux.errno(rc) != .SUCCESS) {
                self.complete(p, .a_error, @intFromEnum(linux.errno(rc)));
                continue;
            }
            ev.data.ptr = @intFromPtr(p) | 1;
            rc = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_ADD, p.fb, &ev);
            if (linux.errno(rc) != .SUCCESS) {
                self.complete(p, .b_error, @intFromEnum(linux.errno(rc)));
                continue;
            }
        }
    }

    /// Move what can move. `ab`/`ba`: which directions to try; an event names the side it came
    /// from, so a readable side pumps its outgoing direction and a writable side only the direction
    /// that has bytes waiting for it (saves an EAGAIN splice per event).
    fn pump(self: *Worker, p: *Pair, ab: bool, ba: bool) void {
        var o1: Outcome = .blocked;
        if (ab) {
            o1 = self.pumpDir(p, &p.ab);
            switch (o1) {
                .src_reset => return self.complete(p, .a_reset, 0),
                .dst_reset => return self.complete(p, .b_reset, 0),
                .src_error => return self.complete(p, .a_error, p.err),
                .dst_error => return self.complete(p, .b_error, p.err),
                else => {},
            }
        }
        var o2: Outcome = .blocked;
        if (ba) {
            o2 = self.pumpDir(p, &p.ba);
            switch (o2) {
                .src_reset => return self.complete(p, .b_reset, 0),
                .dst_reset => return self.complete(p, .a_reset, 0),
                .src_error => return self.complete(p, .b_error, p.err),
                .dst_error => return self.complete(p, .a_error, p.err),
                else => {},
            }
        }
        if (p.ab.shut and p.ba.shut) return self.complete(p, .done, 0);
        if (o1 == .starved or o2 == .starved) p.starved = true;
        if ((o1 == .budget or o2 == .budget) and !p.queued) {
            p.queued = true;
            p.ready_next = self.ready;
            self.ready = p;
        }
    }

    fn pumpDir(self: *Worker, p: *Pair, d: *Dir) Outcome {
        const o = self.moveDir(p, d);
        // An empty pipe goes back to the pool at once: an idle direction holds none.
        if (d.in_pipe == 0) self.releasePipe(d);
        return o;
    }

    fn moveDir(self: *Worker, p: *Pair, d: *Dir) Outcome {
        var rounds: u32 = 0;
        while (rounds < BUDGET) : (rounds += 1) {
            if (d.in_pipe > 0) {
                const rc = splice(d.pr, d.dst, d.in_pipe);
                switch (linux.errno(rc)) {
                    .SUCCESS => {
                        d.in_pipe -= rc;
                        d.total += rc;
                        p.last_ms = self.now;
                        continue;
                    },
                    .AGAIN => return .blocked,
                    .INTR => continue,
                    .PIPE, .CONNRESET => return .dst_reset,
                    else => |e| {
                        p.err = @intFromEnum(e);
                        return .dst_error;
                    },
                }
            }
            if (d.eof) {
                if (!d.shut) {
                    d.shut = true;
                    _ = linux.shutdown(d.dst, linux.SHUT.WR);
                }
                return .finished;
            }
            // Only into an empty pipe (in_pipe is 0 here), taken now that there may be bytes.
            if (d.pr < 0 and !self.takePipe(d)) return .starved;
            const rc = splice(d.src, d.pw, d.cap);
            switch (linux.errno(rc)) {
                .SUCCESS => {
                    if (rc == 0) {
                        // After a RST the kernel reports EOF (SOCK_DONE), and the error itself may
                        // already be taken (Bun reads SO_ERROR on its paused fd): ask the error, then
                        // the state. A FIN leaves the socket in CLOSE_WAIT at its first EOF while we
                        // have not shut its write side (after our shutdown, a FIN moves it to CLOSE,
                        // the time-wait state living on in a separate socket).
                        const se = sockError(d.src);
                        if (se != 0 and se != @intFromEnum(linux.E.CONNRESET) and se != @intFromEnum(linux.E.PIPE)) {
                            p.err = se;
                            return .src_error;
                        }
                        const other = if (d == &p.ab) &p.ba else &p.ab;
                        if (se != 0 or (!other.shut and tcpState(d.src) == TCP_CLOSE)) return .src_reset;
                        d.eof = true;
                    } else {
                        d.in_pipe += rc;
                        d.batch += rc;
                        p.last_ms = self.now;
                    }
                    continue;
                },
                .AGAIN => {
                    self.drained(p, d);
                    return .blocked;
                },
                .INTR => continue,
                .CONNRESET => return .src_reset,
                else => |e| {
                    p.err = @intFromEnum(e);
                    return .src_error;
                },
            }
        }
        return .budget;
    }

    /// EPOLLERR on a side: a reset (or another socket error) that no splice has reported yet.
    fn socketError(self: *Worker, p: *Pair, side_b: bool) void {
        const err = sockError(if (side_b) p.fb else p.fa);
        if (err == 0) return;
        const e: linux.E = @enumFromInt(@as(u16, @intCast(err)));
        const is_reset = e == .CONNRESET or e == .PIPE;
        if (side_b) self.complete(p, if (is_reset) .b_reset else .b_error, if (is_reset) 0 else @intCast(err)) else self.complete(p, if (is_reset) .a_reset else .a_error, if (is_reset) 0 else @intCast(err));
    }

    fn sweep(self: *Worker) void {
        var it = self.live;
        while (it) |p| {
            it = p.next;
            if (p.starved) {
                p.starved = false;
                self.pump(p, true, true);
                if (p.done) continue;
            }
            if (p.idle_ms > 0 and self.now - p.last_ms >= p.idle_ms) self.complete(p, .idle_timeout, 0);
        }
    }

    fn complete(self: *Worker, p: *Pair, reason: Reason, err: u32) void {
        if (p.done) return;
        p.done = true;
        if (reason == .a_reset or reason == .b_reset) {
            // The last close of each socket (ours or Bun's, whichever comes second) sends RST.
            setLingerZero(p.fa);
            setLingerZero(p.fb);
        }
        // The dups share their open file with Bun's fds, so close() alone would not remove them from
        // this epoll: delete explicitly.
        _ = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_DEL, p.fa, null);
        _ = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_DEL, p.fb, null);
        closeFd(p.fa);
        closeFd(p.fb);
        self.unschedule(&p.ab);
        self.unschedule(&p.ba);
        self.releasePipe(&p.ab);
        self.releasePipe(&p.ba);
        // unlink from live
        if (p.prev) |pv| pv.next = p.next else if (self.live == p) self.live = p.next;
        if (p.next) |nx| nx.prev = p.prev;
        p.prev = null;
        p.next = null;
        p.link = self.dead;
        self.dead = p;
        self.engine.pushRecord(.{ .id = p.id, .a_to_b = p.ab.total, .b_to_a = p.ba.total, .reason = @intFromEnum(reason), .err = err });
    }

    /// Freed after the event batch: a later event of the same batch may still name the pair.
    fn freeDead(self: *Worker) void {
        while (self.dead) |p| {
            self.dead = p.link;
            self.engine.gpa.destroy(p);
        }
    }
};

pub const Engine = struct {
    gpa: std.mem.Allocator,
    workers: []Worker,
    pipe_size: usize,
    next_worker: u32 = 0,
    stopping: bool = false,
    /// Batching needs a timeout finer than epoll_wait's milliseconds: on where epoll_pwait2 works.
    batching: bool = false,
    batch_ns: u64 = BATCH_NS,
    /// Reads made when a batching direction's time came (for tests and metrics).
    batch_reads: u64 = 0,
    /// Pipes held by directions now / spare in the workers' pools (for tests and metrics).
    pipes_in_use: i32 = 0,
    pipes_spare: i32 = 0,
    queue: completion.Queue,

    /// threads: worker threads (>= 1); pipe_size: bytes per pipe, 0 = min(1 MiB, pipe-max-size).
    pub fn create(gpa: std.mem.Allocator, threads: usize, pipe_size: usize) !*Engine {
        const self = try gpa.create(Engine);
        errdefer gpa.destroy(self);
        const max = pipeMaxSize();
        var size = if (pipe_size == 0) @as(usize, 1 << 20) else pipe_size;
        if (size > max) size = max;
        self.* = .{ .gpa = gpa, .workers = try gpa.alloc(Worker, @max(threads, 1)), .pipe_size = size, .queue = completion.Queue.init(gpa) };
        errdefer gpa.free(self.workers);
        for (self.workers) |*w| w.* = .{ .engine = self };
        var started: usize = 0;
        errdefer {
            @atomicStore(bool, &self.stopping, true, .release);
            for (self.workers[0..started]) |*w| {
                w.wake();
                if (w.thread) |t| t.join();
            }
            for (self.workers) |*w| {
                closeFd(w.epfd);
                closeFd(w.evfd);
            }
        }
        for (self.workers) |*w| {
            var rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
            if (linux.errno(rc) != .SUCCESS) return error.EpollCreate;
            w.epfd = @intCast(rc);
            rc = linux.eventfd(0, linux.EFD.CLOEXEC | linux.EFD.NONBLOCK);
            if (linux.errno(rc) != .SUCCESS) return error.EventFd;
            w.evfd = @intCast(rc);
            var ev = linux.epoll_event{ .events = linux.EPOLL.IN, .data = .{ .ptr = 0 } };
            rc = linux.epoll_ctl(w.epfd, linux.EPOLL.CTL_ADD, w.evfd, &ev);
            if (linux.errno(rc) != .SUCCESS) return error.EpollCtl;
        }
        var none: [MAX_EVENTS]linux.epoll_event = undefined;
        self.batching = linux.errno(epollPwait2(self.workers[0].epfd, &none, &.{ .sec = 0, .nsec = 0 })) == .SUCCESS;
        for (self.workers) |*w| {
            w.thread = try std.Thread.spawn(.{}, Worker.run, .{w});
            started += 1;
        }
        return self;
    }

    /// Stop the threads; pairs still live complete with reason `shutdown` (their records stay
    /// in the queue until destroy).
    pub fn destroy(self: *Engine) void {
        @atomicStore(bool, &self.stopping, true, .release);
        for (self.workers) |*w| {
            w.wake();
            if (w.thread) |t| t.join();
            closeFd(w.epfd);
            closeFd(w.evfd);
        }
        self.queue.deinit();
        self.gpa.free(self.workers);
        self.gpa.destroy(self);
    }

    /// Hand over a connected pair. Returns 0, or -errno (nothing was taken over then).
    pub fn add(self: *Engine, fd_a: i32, fd_b: i32, idle_ms: i64, id: u64) c_int {
        if (@atomicLoad(bool, &self.stopping, .acquire)) return -@as(c_int, @intFromEnum(linux.E.SHUTDOWN));
        var fds = [2]i32{ -1, -1 };
        var ok = false;
        defer if (!ok) for (fds) |fd| closeFd(fd);
        for ([2]i32{ fd_a, fd_b }, 0..) |fd, i| {
            const rc = linux.fcntl(fd, linux.F.DUPFD_CLOEXEC, 0);
            if (linux.errno(rc) != .SUCCESS) return negErrno(rc);
            fds[i] = @intCast(rc);
            // O_NONBLOCK lives on the open file, shared with Bun's fd, which is nonblocking already.
            const fl = linux.fcntl(fds[i], linux.F.GETFL, 0);
            if (linux.errno(fl) != .SUCCESS) return negErrno(fl);
            const nb: usize = @as(u32, @bitCast(linux.O{ .NONBLOCK = true }));
            const rc2 = linux.fcntl(fds[i], linux.F.SETFL, fl | nb);
            if (linux.errno(rc2) != .SUCCESS) return negErrno(rc2);
        }
        const rc = self.adopt(fds[0], fds[1], idle_ms, id, 0, 0);
        ok = rc == 0;
        return rc;
    }

    /// Take over a pair whose nonblocking fds become the engine's own (it closes them when the pair
    /// completes), whose directions have delivered `a_to_b` and `b_to_a` bytes already (the record
    /// counts on from there). The uring engine hands its streams over this way (uring.zig, "Streams").
    /// 0, or -errno: then the fds are still the caller's.
    pub fn adopt(self: *Engine, fd_a: i32, fd_b: i32, idle_ms: i64, id: u64, a_to_b: u64, b_to_a: u64) c_int {
        if (@atomicLoad(bool, &self.stopping, .acquire)) return -@as(c_int, @intFromEnum(linux.E.SHUTDOWN));
        const w = &self.workers[@atomicRmw(u32, &self.next_worker, .Add, 1, .monotonic) % self.workers.len];
        const p = self.gpa.create(Pair) catch return -@as(c_int, @intFromEnum(linux.E.NOMEM));
        p.* = .{
            .id = id,
            .fa = fd_a,
            .fb = fd_b,
            .ab = .{ .src = fd_a, .dst = fd_b, .total = a_to_b, .other_mark = b_to_a },
            .ba = .{ .src = fd_b, .dst = fd_a, .total = b_to_a, .other_mark = a_to_b },
            .idle_ms = idle_ms,
            .last_ms = nowMs(),
            .worker = w,
        };
        p.ab.pair = p;
        p.ba.pair = p;
        self.queue.begin();
        w.lock.lock();
        p.link = w.incoming;
        w.incoming = p;
        w.lock.unlock();
        w.wake();
        return 0;
    }

    /// A new empty pipe of the configured size; a refused size (per-user pipe limits) keeps the
    /// default one. Null when the pipe cannot be made.
    fn newPipe(self: *Engine) ?Pipe {
        var pfd: [2]i32 = undefined;
        const rc = linux.pipe2(&pfd, .{ .NONBLOCK = true, .CLOEXEC = true });
        if (linux.errno(rc) != .SUCCESS) return null;
        const sz = linux.fcntl(pfd[1], linux.F.SETPIPE_SZ, self.pipe_size);
        const cap: usize = if (linux.errno(sz) == .SUCCESS) sz else blk: {
            const g = linux.fcntl(pfd[1], linux.F.GETPIPE_SZ, 0);
            break :blk if (linux.errno(g) == .SUCCESS) g else 65536;
        };
        return .{ .r = pfd[0], .w = pfd[1], .cap = cap };
    }

    /// Reads made because a batching direction's time came.
    pub fn batchReads(self: *Engine) u64 {
        return @atomicLoad(u64, &self.batch_reads, .monotonic);
    }

    /// Pipes held by pairs' directions now (only directions with bytes to move hold one).
    pub fn pipesInUse(self: *Engine) i32 {
        return @atomicLoad(i32, &self.pipes_in_use, .monotonic);
    }

    /// Empty pipes kept for reuse in the workers' pools (at most POOL_MAX each).
    pub fn pipesSpare(self: *Engine) i32 {
        return @atomicLoad(i32, &self.pipes_spare, .monotonic);
    }

    fn pushRecord(self: *Engine, r: Record) void {
        self.queue.push(r);
    }

    /// Move up to out.len completed records into `out`; returns how many.
    pub fn poll(self: *Engine, out: []Record) usize {
        return self.queue.poll(out);
    }

    /// Pairs handed over and not yet completed.
    pub fn activeCount(self: *Engine) i32 {
        return self.queue.activeCount();
    }
};

/// Can this host splice socket -> pipe -> socket? 0, or -errno of the first refusal.
pub fn probe() c_int {
    var sv: [2]i32 = undefined;
    var rc = linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.CLOEXEC | linux.SOCK.NONBLOCK, 0, &sv);
    if (linux.errno(rc) != .SUCCESS) return negErrno(rc);
    defer closeFd(sv[0]);
    defer closeFd(sv[1]);
    var pfd: [2]i32 = undefined;
    rc = linux.pipe2(&pfd, .{ .NONBLOCK = true, .CLOEXEC = true });
    if (linux.errno(rc) != .SUCCESS) return negErrno(rc);
    defer closeFd(pfd[0]);
    defer closeFd(pfd[1]);
    const msg = "x";
    _ = linux.write(sv[0], msg, 1);
    rc = splice(sv[1], pfd[1], 1);
    if (linux.errno(rc) != .SUCCESS) return negErrno(rc);
    rc = splice(pfd[0], sv[1], 1);
    if (linux.errno(rc) != .SUCCESS) return negErrno(rc);
    return 0;
}

// ---------------------------------------------------------------------------------------------
// Tests: real loopback TCP connections. Layout of every test:
//   client c <-> p1 (accepted)   [engine relays p1 <-> p2]   p2 (connected) <-> b backend
const testing = std.testing;
const rig = @import("test_rig.zig");
const Rig = rig.Rig;
const waitRecord = rig.waitRecord;
const writeAll = rig.writeAll;
const readToEof = rig.readToEof;
const writerThread = rig.writerThread;
const sleepMs = rig.sleepMs;
const countFds = rig.countFds;
const readExact = rig.readExact;
const setBuf = rig.setBuf;
const writerNoFin = rig.writerNoFin;

test "bytes go through both ways, FIN ends each direction, counts and reason come back" {
    const e = try Engine.create(testing.allocator, 1, 0);
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 42));
    const total: usize = 8 << 20;
    const t = try std.Thread.spawn(.{}, writerThread, .{ r.c, total });
    const got = try readToEof(r.b);
    t.join();
    try testing.expectEqual(@as(u64, total), got.n);
    try testing.expectEqual(patternSum(total), got.sum);
    try writeAll(r.b, "reply");
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    const back = try readToEof(r.c);
    try testing.expectEqual(@as(u64, 5), back.n);
    const rec = try waitRecord(e);
    try testing.expectEqual(@as(u64, 42), rec.id);
    try testing.expectEqual(@as(u64, total), rec.a_to_b);
    try testing.expectEqual(@as(u64, 5), rec.b_to_a);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(i32, 0), e.activeCount());
}

test "half-close: the backend keeps sending after the client's FIN" {
    const e = try Engine.create(testing.allocator, 1, 0);
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 7));
    try writeAll(r.c, "question");
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    const q = try readToEof(r.b); // the FIN arrived after the bytes
    try testing.expectEqual(@as(u64, 8), q.n);
    try writeAll(r.b, "answer after FIN");
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    const a = try readToEof(r.c);
    try testing.expectEqual(@as(u64, 16), a.n);
    const rec = try waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, 8), rec.a_to_b);
    try testing.expectEqual(@as(u64, 16), rec.b_to_a);
}

test "reset: a client RST reaches the backend as a reset" {
    const e = try Engine.create(testing.allocator, 1, 0);
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 9));
    try writeAll(r.c, "hello");
    var buf: [5]u8 = undefined;
    try testing.expectEqual(@as(usize, 5), linux.read(r.b, &buf, 5));
    setLingerZero(r.c);
    closeFd(r.c);
    r.c = -1;
    const rec = try waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.a_reset), rec.reason);
    // Bun's fds are the last references: closing them sends the RST on.
    closeFd(r.p1);
    r.p1 = -1;
    closeFd(r.p2);
    r.p2 = -1;
    try testing.expectError(error.ConnReset, readToEof(r.b));
}

test "reset: a backend RST whose error someone else already read still passes on as a reset" {
    const e = try Engine.create(testing.allocator, 1, 0);
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 10));
    setLingerZero(r.b);
    closeFd(r.b);
    r.b = -1;
    // What Bun does on its own (paused) fd when EPOLLERR fires: read and clear SO_ERROR.
    var i: usize = 0;
    while (i < 1000 and sockError(r.p2) == 0 and tcpState(r.p2) != TCP_CLOSE) : (i += 1) {
        const ts = linux.timespec{ .sec = 0, .nsec = 1_000_000 };
        _ = linux.nanosleep(&ts, null);
    }
    const rec = try waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.b_reset), rec.reason);
    closeFd(r.p1);
    r.p1 = -1;
    closeFd(r.p2);
    r.p2 = -1;
    try testing.expectError(error.ConnReset, readToEof(r.c));
}

test "idle timeout completes a silent pair" {
    const e = try Engine.create(testing.allocator, 1, 0);
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    const t0 = nowMs();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 150, 11));
    try writeAll(r.c, "x"); // activity first: the timer restarts
    const rec = try waitRecord(e);
    const took = nowMs() - t0;
    try testing.expectEqual(@intFromEnum(Reason.idle_timeout), rec.reason);
    try testing.expectEqual(@as(u64, 1), rec.a_to_b);
    try testing.expect(took >= 140 and took < 1000);
    closeFd(r.p1);
    r.p1 = -1;
    closeFd(r.p2);
    r.p2 = -1;
    const got = try readToEof(r.b);
    try testing.expectEqual(@as(u64, 1), got.n);
}

test "many pairs on two threads, and shutdown completes the live ones" {
    const e = try Engine.create(testing.allocator, 2, 65536);
    defer e.destroy();
    var rigs: [50]Rig = undefined;
    for (&rigs, 0..) |*r, i| {
        r.* = try Rig.init();
        try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, i));
    }
    defer for (rigs) |r| r.deinit();
    for (rigs) |r| {
        try writeAll(r.c, "ping");
        var buf: [4]u8 = undefined;
        var got: usize = 0;
        while (got < 4) got += linux.read(r.b, buf[got..].ptr, 4 - got);
        try testing.expectEqualStrings("ping", &buf);
    }
    try testing.expectEqual(@as(i32, 50), e.activeCount());
}

/// writerNoFin's bytes (its pattern repeats every 64 KiB), 64 KiB per millisecond.
fn pacedWriter(fd: i32, total: usize) void {
    var left = total;
    while (left > 0) : (sleepMs(1)) {
        const k = @min(left, 65536);
        writerNoFin(fd, k);
        left -= k;
    }
}

/// `size` bytes a -> b, then `size` bytes b -> a, the pair staying open between and after.
fn exchange(r: Rig, size: usize) !void {
    const t = try std.Thread.spawn(.{}, writerNoFin, .{ r.c, size });
    _ = try readExact(r.b, size);
    t.join();
    const t2 = try std.Thread.spawn(.{}, writerNoFin, .{ r.b, size });
    _ = try readExact(r.c, size);
    t2.join();
}

/// Sum of the first `total` bytes the rig's writers send.
fn patternSum(total: usize) u64 {
    var sum: u64 = 0;
    for (0..total) |i| sum +%= @as(u8, @truncate((i % 65536) *% 7));
    return sum;
}

test "batching: a stream is read in batches, and the bytes after it (no FIN) still arrive" {
    const e = try Engine.create(testing.allocator, 1, 0);
    defer e.destroy();
    if (!e.batching) return error.SkipZigTest; // no epoll_pwait2 on this kernel
    // A window long enough that the paced writer below always counts as streaming, however slow
    // the host. (A writer faster than the engine would not do: a source never found empty is never
    // batched, there is no wake-up to save.)
    e.batch_ns = 20 * std.time.ns_per_ms;
    const r = try Rig.init();
    defer r.deinit();
    // A hang guard, not a timing assertion: a tail left behind fails the read instead of blocking.
    const guard = linux.timeval{ .sec = 10, .usec = 0 };
    _ = linux.setsockopt(r.b, linux.SOL.SOCKET, linux.SO.RCVTIMEO, @ptrCast(&guard), @sizeOf(linux.timeval));
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 3));
    const total: usize = 8 << 20;
    const t = try std.Thread.spawn(.{}, pacedWriter, .{ r.c, total });
    try testing.expectEqual(patternSum(total), try readExact(r.b, total));
    t.join();
    try testing.expect(e.batchReads() > 0);
    // The stream has stopped: the next bytes come through (by the next batch read, or by EPOLLIN once
    // that read found too little), and so does the FIN.
    try writeAll(r.c, "tail");
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    const tail = try readToEof(r.b);
    try testing.expectEqual(@as(u64, 4), tail.n);
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    const rec = try waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, total + 4), rec.a_to_b);
}

test "batching: request/response never batches, however big the messages" {
    const e = try Engine.create(testing.allocator, 1, 0);
    defer e.destroy();
    if (!e.batching) return error.SkipZigTest;
    e.batch_ns = 20 * std.time.ns_per_ms; // every message would count as streaming but for the replies
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 4));
    for (0..8) |_| try exchange(r, 512 << 10);
    try testing.expectEqual(@as(u64, 0), e.batchReads());
}

test "probe: this host can splice" {
    try testing.expectEqual(@as(c_int, 0), probe());
}

test "pipe-max-size is read" {
    try testing.expect(pipeMaxSize() >= 4096);
}

// ---- the pipe pool ------------------------------------------------------------------------------

/// Wait (up to 5 s) for the engine to hold exactly `want` pipes.
fn waitPipesInUse(e: *Engine, want: i32) !void {
    var i: usize = 0;
    while (i < 5000) : (i += 1) {
        if (e.pipesInUse() == want) return;
        sleepMs(1);
    }
    std.debug.print("pipes in use: {d}, expected {d}\n", .{ e.pipesInUse(), want });
    return error.PipesInUse;
}

test "pipes: none at handover, taken while bytes move, all back in the pool once traffic stops" {
    const e = try Engine.create(testing.allocator, 1, 0);
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 1));
    sleepMs(20);
    try testing.expectEqual(@as(i32, 0), e.pipesInUse());
    try testing.expectEqual(@as(i32, 0), e.pipesSpare());
    const total: usize = 4 << 20;
    for (0..2) |_| {
        try exchange(r, total);
        try waitPipesInUse(e, 0);
        try testing.expectEqual(@as(i32, 1), e.activeCount());
        try testing.expect(e.pipesSpare() >= 1 and e.pipesSpare() <= 2);
    }
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    const rec = try waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, 2 * total), rec.a_to_b);
    try testing.expectEqual(@as(u64, 2 * total), rec.b_to_a);
    try testing.expectEqual(@as(i32, 0), e.pipesInUse());
}

test "pipes: 200 idle pairs, each having echoed once, hold no pipe and no pipe fd" {
    const e = try Engine.create(testing.allocator, 2, 0);
    defer e.destroy();
    const N = 200;
    var rigs: [N]Rig = undefined;
    var made: usize = 0;
    defer for (rigs[0..made]) |r| r.deinit();
    for (&rigs) |*r| {
        r.* = try Rig.init();
        made += 1;
    }
    const before = try countFds();
    for (&rigs, 0..) |*r, i| try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, i));
    for (rigs) |r| {
        try writeAll(r.c, "ping");
        _ = try readExact(r.b, 4);
        try writeAll(r.b, "pong");
        _ = try readExact(r.c, 4);
    }
    try waitPipesInUse(e, 0);
    try testing.expectEqual(@as(i32, N), e.activeCount());
    // One exchange at a time: a worker never needed more than a pipe or two.
    try testing.expect(e.pipesSpare() <= 4);
    // The engine's own fds: its dups (2 per pair) and the few spare pipes.
    const after = try countFds();
    try testing.expect(after - before <= 2 * N + 2 * @as(usize, @intCast(e.pipesSpare())));
}

test "pipes: a stalled reader keeps one pipe (bytes in it), given back once it reads" {
    const e = try Engine.create(testing.allocator, 1, 65536);
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    // A small send buffer toward the client: the pipe fills sooner. (Not a small receive buffer on
    // the client: shrunk below a window already advertised, it wedges loopback TCP.)
    setBuf(r.p1, linux.SO.SNDBUF, 4096);
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 5));
    const total: usize = 8 << 20;
    const t = try std.Thread.spawn(.{}, writerThread, .{ r.b, total });
    try waitPipesInUse(e, 1);
    sleepMs(100);
    try testing.expectEqual(@as(i32, 1), e.pipesInUse()); // still held, and only that one
    const got = try readToEof(r.c);
    t.join();
    try testing.expectEqual(@as(u64, total), got.n);
    try waitPipesInUse(e, 0);
    try testing.expectEqual(@as(i32, 1), e.activeCount()); // a -> b is still open
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    const rec = try waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, total), rec.b_to_a);
}

test "pipes: the pool keeps at most POOL_MAX spares and closes the rest" {
    const e = try Engine.create(testing.allocator, 1, 65536);
    defer e.destroy();
    const N = POOL_MAX + 6;
    var rigs: [N]Rig = undefined;
    var sent: [N]usize = undefined;
    var made: usize = 0;
    defer for (rigs[0..made]) |r| r.deinit();
    for (&rigs, 0..) |*r, i| {
        r.* = try Rig.init();
        made += 1;
        setBuf(r.p1, linux.SO.SNDBUF, 4096);
        try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, i));
    }
    // Every backend writes 1 MiB (more than the client's receive buffer and the proxy's send buffer
    // hold) as its socket takes it; no client reads: each pair ends up holding a pipe.
    var chunk: [65536]u8 = undefined;
    @memset(&chunk, 'z');
    for (&rigs, 0..) |*r, i| {
        const fl = linux.fcntl(r.b, linux.F.GETFL, 0);
        _ = linux.fcntl(r.b, linux.F.SETFL, fl | @as(usize, @as(u32, @bitCast(linux.O{ .NONBLOCK = true }))));
        sent[i] = 0;
        var stuck: u32 = 0;
        while (sent[i] < 1 << 20 and stuck < 200) {
            const rc = linux.write(r.b, &chunk, @min(chunk.len, (1 << 20) - sent[i]));
            if (linux.errno(rc) == .SUCCESS) {
                sent[i] += rc;
                stuck = 0;
            } else {
                stuck += 1;
                sleepMs(1);
            }
        }
        try testing.expect(sent[i] > 512 * 1024);
    }
    try waitPipesInUse(e, N);
    try testing.expectEqual(@as(i32, 0), e.pipesSpare());
    for (rigs, 0..) |r, i| _ = try readExact(r.c, sent[i]);
    try waitPipesInUse(e, 0);
    try testing.expectEqual(@as(i32, POOL_MAX), e.pipesSpare());
    try testing.expectEqual(@as(i32, N), e.activeCount());
}
