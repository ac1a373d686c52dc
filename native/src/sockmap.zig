//! The sockmap relay engine: the kernel moves the bytes of a connected TCP pair by itself. An
//! sk_skb stream_verdict program (native/bpf/relay.bpf.c) redirects every segment that arrives on
//! one socket to the egress of its peer, in softirq/kworker context: no thread of ours and no
//! syscall per read or write, and the payload never reaches userspace.
//!
//! Two SOCKHASH maps, both keyed by socket cookie (SO_COOKIE):
//! - `peers`: cookie(a) -> b and cookie(b) -> a. The program looks its own cookie up here and
//!   redirects to the socket it finds; no program is attached to this map.
//! - `members`: cookie(x) -> x. The program is attached here: a socket runs it once it is a member.
//! A pair is put into `peers` first and into `members` second, so no socket ever runs the program
//! before its peer entry exists (a miss would SK_PASS bytes into a queue no one forwards).
//! Bytes that reached a socket before it became a member wait in its receive queue, which the
//! verdict only reads on the next data_ready; setting SO_RCVLOWAT calls tcp_data_ready() and so
//! pushes them through the program at once, in order, ahead of anything later.
//! The caller (JS) must have written the bytes it already read to the peer BEFORE `add`: nothing
//! of a's can then be redirected ahead of them.
//!
//! What the program does not do, this file's one thread (its own epoll) does:
//! - FIN: the verdict never sees one. EPOLLRDHUP on a says a's peer is done; once every byte a
//!   received has been written into b (b's bytes acknowledged + SIOCOUTQ >= a's tcp_info
//!   bytes_received, i.e. the redirect backlog is empty), shutdown(b, SHUT_WR). A shutdown sooner would
//!   put the FIN ahead of bytes still in the kworker's backlog.
//! - Reset: EPOLLERR (or a socket found in TCP_CLOSE before we shut its write side) completes the
//!   pair; SO_LINGER 0 on both makes their last close send RST to the other peer too.
//! - Idle timeout: tcp_info's last_data_recv on both sockets, checked every quarter of the timeout.
//! - Removal: entries are deleted when a pair completes, members first (the program stops), then
//!   peers. A normal completion happens only after both backlogs are empty (see FIN), so the
//!   deletion (which purges a socket's backlog) loses nothing.
//! - Counts: bytes each way are the bytes written into the destination socket since `add`
//!   (sys.bytesWritten: acknowledged + SIOCOUTQ): real kernel counts, not estimates.
//! - Backpressure: NONE beyond the kernel's. The kernel takes a redirected segment off the source's
//!   receive queue at once and queues it on the destination's redirect backlog, so TCP's window
//!   stays open however slowly the destination's reader reads: a reader that stops lets the sender
//!   fill kernel memory (the proxy's own memory stays flat). Pausing the source by taking it out of
//!   `members` was tried and dropped: a source whose FIN arrives while paused cannot be put back
//!   (the kernel refuses a socket that is no longer ESTABLISHED), and its last bytes were stranded.
//! The fds are dup'ed for the same reason as in splice.zig (Bun closes a paused socket's fd on a
//! reset; a bare number could be reused). Completions go through completion.Queue like splice's.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("sys.zig");
const bpf = @import("bpf.zig");
const completion = @import("completion.zig");
pub const Reason = completion.Reason;
pub const Record = completion.Record;

/// The verdict program, compiled from native/bpf/relay.bpf.c by build.zig.
const OBJECT = @embedFile("relay_bpf");
/// Pairs the maps can hold (each pair is two entries in each map). A SOCKHASH allocates its
/// buckets up front: 2^18 entries cost about 4 MiB of kernel memory per map.
pub const MAX_PAIRS = 1 << 17;
const MAX_EVENTS = 256;
const SO_RCVLOWAT = 18;
const TCP_CLOSE = sys.TCP_CLOSE;

const Side = struct {
    fd: i32,
    cookie: u64,
    /// RDHUP seen: this side's peer sent FIN
    fin: bool = false,
    /// we shut this side's write direction (passed the other peer's FIN on)
    shut: bool = false,
    /// sys.bytesWritten of this socket at add: bytes the engine wrote into it are counted from here
    base: u64 = 0,
    /// bytesWritten when we shut its write side (after that, the FIN counts one more)
    final: ?u64 = null,
};

const Pair = struct {
    id: u64,
    a: Side,
    b: Side,
    idle_ms: i64,
    next_idle_check: i64 = 0,
    done: bool = false,
    prev: ?*Pair = null,
    next: ?*Pair = null,
    /// incoming list, then the dead list
    link: ?*Pair = null,
};

pub const Engine = struct {
    gpa: std.mem.Allocator,
    peers: i32 = -1,
    members: i32 = -1,
    prog: i32 = -1,
    epfd: i32 = -1,
    evfd: i32 = -1,
    thread: ?std.Thread = null,
    stopping: bool = false,
    lock: sys.Lock = .{},
    incoming: ?*Pair = null,
    live: ?*Pair = null,
    dead: ?*Pair = null,
    /// pairs waiting for a backlog to drain before their FIN can go on
    fin_waiting: u32 = 0,
    now: i64 = 0,
    next_sweep: i64 = 0,
    queue: completion.Queue,

    /// Create the maps, load and attach the program, start the thread. Error: -errno of the first
    /// refusal (EPERM without CAP_BPF/CAP_NET_ADMIN, EINVAL on a kernel without the feature).
    pub fn create(gpa: std.mem.Allocator) !*Engine {
        const self = try gpa.create(Engine);
        errdefer gpa.destroy(self);
        self.* = .{ .gpa = gpa, .queue = completion.Queue.init(gpa) };
        errdefer self.closeAll();
        const rc = self.setUp();
        if (rc < 0) {
            last_error = rc;
            return error.Refused;
        }
        self.thread = try std.Thread.spawn(.{}, run, .{self});
        return self;
    }

    /// -errno of the last refused create (for the exported start function).
    pub var last_error: c_int = 0;

    fn setUp(self: *Engine) c_int {
        self.peers = bpf.createSockhash(2 * MAX_PAIRS);
        if (self.peers < 0) return self.peers;
        self.members = bpf.createSockhash(2 * MAX_PAIRS);
        if (self.members < 0) return self.members;
        var prog = bpf.parse(self.gpa, OBJECT) catch return sys.errnoInt(.NOEXEC);
        defer self.gpa.free(prog.insns);
        bpf.patchMap(&prog, self.peers);
        self.prog = bpf.loadSkSkb(&prog, &.{});
        if (self.prog < 0) return self.prog;
        const at = bpf.attachVerdict(self.members, self.prog);
        if (at < 0) return at;
        var rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
        if (linux.errno(rc) != .SUCCESS) return sys.negErrno(rc);
        self.epfd = @intCast(rc);
        rc = linux.eventfd(0, linux.EFD.CLOEXEC | linux.EFD.NONBLOCK);
        if (linux.errno(rc) != .SUCCESS) return sys.negErrno(rc);
        self.evfd = @intCast(rc);
        var ev = linux.epoll_event{ .events = linux.EPOLL.IN, .data = .{ .ptr = 0 } };
        rc = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_ADD, self.evfd, &ev);
        if (linux.errno(rc) != .SUCCESS) return sys.negErrno(rc);
        return 0;
    }

    fn closeAll(self: *Engine) void {
        // Closing the maps and the program detaches everything (the kernel frees them with the last fd).
        for ([_]i32{ self.members, self.peers, self.prog, self.epfd, self.evfd }) |fd| sys.closeFd(fd);
    }

    /// Stop the thread; live pairs complete with reason `shutdown`.
    pub fn destroy(self: *Engine) void {
        @atomicStore(bool, &self.stopping, true, .release);
        self.wake();
        if (self.thread) |t| t.join();
        self.closeAll();
        self.queue.deinit();
        self.gpa.destroy(self);
    }

    fn wake(self: *Engine) void {
        const one: u64 = 1;
        _ = linux.write(self.evfd, @ptrCast(&one), 8);
    }

    /// Hand over two connected TCP sockets (fd_a: the client side, accepted; fd_b: the upstream side,
    /// connected by us: the FIN check counts b's SYN, see sys.SYN_COUNTED_ACTIVE). The
    /// caller must already have written every byte it read from one to the other. 0, or -errno and
    /// nothing was taken over: EPROTONOSUPPORT for a non-TCP socket, EOPNOTSUPP for a socket that is
    /// not ESTABLISHED any more (a FIN already arrived: the caller relays it itself).
    pub fn add(self: *Engine, fd_a: i32, fd_b: i32, idle_ms: i64, id: u64) c_int {
        if (@atomicLoad(bool, &self.stopping, .acquire)) return sys.errnoInt(.SHUTDOWN);
        const da = sys.dupNonblock(fd_a);
        if (da < 0) return da;
        const db = sys.dupNonblock(fd_b);
        if (db < 0) {
            sys.closeFd(da);
            return db;
        }
        var ok = false;
        defer if (!ok) {
            sys.closeFd(da);
            sys.closeFd(db);
        };
        const wa = sys.bytesWritten(da) orelse return sys.errnoInt(.PROTONOSUPPORT);
        const wb = sys.bytesWritten(db) orelse return sys.errnoInt(.PROTONOSUPPORT);
        const ca = bpf.socketCookie(da) orelse return sys.errnoInt(.PROTONOSUPPORT);
        const cb = bpf.socketCookie(db) orelse return sys.errnoInt(.PROTONOSUPPORT);
        const p = self.gpa.create(Pair) catch return sys.errnoInt(.NOMEM);
        p.* = .{
            .id = id,
            .a = .{ .fd = da, .cookie = ca, .base = wa },
            .b = .{ .fd = db, .cookie = cb, .base = wb - sys.SYN_COUNTED_ACTIVE },
            .idle_ms = idle_ms,
        };
        // peers first, members second (see the top of the file); undo on any refusal.
        var rc = bpf.insert(self.peers, ca, db);
        if (rc == 0) {
            rc = bpf.insert(self.peers, cb, da);
            if (rc == 0) {
                rc = bpf.insert(self.members, ca, da);
                if (rc == 0) {
                    rc = bpf.insert(self.members, cb, db);
                    if (rc < 0) _ = bpf.remove(self.members, ca);
                }
                if (rc < 0) _ = bpf.remove(self.peers, cb);
            }
            if (rc < 0) _ = bpf.remove(self.peers, ca);
        }
        if (rc < 0) {
            self.gpa.destroy(p);
            return rc;
        }
        // Push what arrived before membership through the program now (tcp_set_rcvlowat calls
        // tcp_data_ready); otherwise it would wait for the next segment, which may never come.
        kick(da);
        kick(db);
        ok = true;
        self.queue.begin();
        self.lock.lock();
        p.link = self.incoming;
        self.incoming = p;
        self.lock.unlock();
        self.wake();
        return 0;
    }

    fn kick(fd: i32) void {
        const one: i32 = 1;
        _ = linux.setsockopt(fd, linux.SOL.SOCKET, SO_RCVLOWAT, @ptrCast(&one), @sizeOf(i32));
    }

    pub fn poll(self: *Engine, out: []Record) usize {
        return self.queue.poll(out);
    }

    pub fn activeCount(self: *Engine) i32 {
        return self.queue.activeCount();
    }

    fn run(self: *Engine) void {
        var events: [MAX_EVENTS]linux.epoll_event = undefined;
        while (!@atomicLoad(bool, &self.stopping, .acquire)) {
            // A FIN waiting for a backlog is checked often; otherwise the sweep's pace is enough.
            const timeout: i32 = if (self.fin_waiting > 0) 2 else 25;
            const rc = linux.epoll_wait(self.epfd, &events, MAX_EVENTS, timeout);
            const n: usize = if (linux.errno(rc) == .SUCCESS) rc else 0;
            self.now = sys.nowMs();
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
                self.onEvent(p, (tag & 1) == 1, ev.events);
            }
            if (self.fin_waiting > 0 or self.now >= self.next_sweep) self.sweep();
            self.freeDead();
        }
        self.takeIncoming();
        while (self.live) |p| self.complete(p, .shutdown, 0);
        self.freeDead();
    }

    fn takeIncoming(self: *Engine) void {
        self.lock.lock();
        var list = self.incoming;
        self.incoming = null;
        self.lock.unlock();
        while (list) |p| {
            list = p.link;
            p.link = null;
            p.next = self.live;
            if (self.live) |h| h.prev = p;
            self.live = p;
            p.next_idle_check = self.now + idlePeriod(p);
            // Edge-triggered RDHUP only: the data itself never wakes us (EPOLLIN is not asked for).
            var ev = linux.epoll_event{ .events = linux.EPOLL.RDHUP | linux.EPOLL.ET, .data = .{ .ptr = @intFromPtr(p) } };
            var rc = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_ADD, p.a.fd, &ev);
            if (linux.errno(rc) != .SUCCESS) {
                self.complete(p, .a_error, @intFromEnum(linux.errno(rc)));
                continue;
            }
            ev.data.ptr = @intFromPtr(p) | 1;
            rc = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_ADD, p.b.fd, &ev);
            if (linux.errno(rc) != .SUCCESS) self.complete(p, .b_error, @intFromEnum(linux.errno(rc)));
        }
    }

    fn idlePeriod(p: *Pair) i64 {
        return if (p.idle_ms > 0) std.math.clamp(@divTrunc(p.idle_ms, 4), 25, 1000) else 1000;
    }

    fn onEvent(self: *Engine, p: *Pair, side_b: bool, events: u32) void {
        const s = if (side_b) &p.b else &p.a;
        if (events & linux.EPOLL.ERR != 0) {
            const err = sys.sockError(s.fd);
            if (err != 0) {
                const e: linux.E = @enumFromInt(@as(u16, @intCast(err)));
                if (e == .CONNRESET or e == .PIPE) return self.complete(p, if (side_b) .b_reset else .a_reset, 0);
                return self.complete(p, if (side_b) .b_error else .a_error, err);
            }
        }
        if (events & (linux.EPOLL.RDHUP | linux.EPOLL.HUP | linux.EPOLL.ERR) != 0) self.check(p, side_b);
    }

    /// Look at one side: a reset whose error someone else took (Bun reads SO_ERROR on its own fd),
    /// or a FIN to pass on once the bytes before it are out.
    fn check(self: *Engine, p: *Pair, side_b: bool) void {
        const s = if (side_b) &p.b else &p.a;
        const other = if (side_b) &p.a else &p.b;
        const info = sys.tcpInfo(s.fd) orelse return self.complete(p, if (side_b) .b_error else .a_error, @intFromEnum(linux.E.NOTCONN));
        if (info.state == TCP_CLOSE and !s.shut) return self.complete(p, if (side_b) .b_reset else .a_reset, 0);
        const rdhup = info.state != 1 and info.state != 4 and info.state != 5; // not ESTABLISHED, FIN_WAIT1, FIN_WAIT2
        if (!rdhup or other.shut) return;
        if (!s.fin) {
            s.fin = true;
            self.fin_waiting += 1;
        }
        // Every byte s received (its FIN counts 1 in bytes_received) is written into `other`?
        // b connected (its count includes the SYN), a was accepted (see sys.SYN_COUNTED_ACTIVE).
        const syn: u64 = if (side_b) 0 else sys.SYN_COUNTED_ACTIVE;
        const written = (sys.bytesWritten(other.fd) orelse return) - syn;
        if (written + 1 < info.bytes_received) return;
        other.final = written;
        _ = linux.shutdown(other.fd, linux.SHUT.WR);
        other.shut = true;
        self.fin_waiting -= 1;
        if (p.a.shut and p.b.shut) self.complete(p, .done, 0);
    }

    fn sweep(self: *Engine) void {
        const full = self.now >= self.next_sweep;
        if (full) self.next_sweep = self.now + 25;
        var it = self.live;
        while (it) |p| {
            it = p.next;
            if (p.a.fin and !p.b.shut) self.check(p, false);
            if (!p.done and p.b.fin and !p.a.shut) self.check(p, true);
            if (p.done or !full or p.idle_ms <= 0 or self.now < p.next_idle_check) continue;
            p.next_idle_check = self.now + idlePeriod(p);
            const ia = sys.tcpInfo(p.a.fd) orelse continue;
            const ib = sys.tcpInfo(p.b.fd) orelse continue;
            if (@min(ia.last_data_recv, ib.last_data_recv) >= p.idle_ms) self.complete(p, .idle_timeout, 0);
        }
    }

    fn complete(self: *Engine, p: *Pair, reason: Reason, err: u32) void {
        if (p.done) return;
        p.done = true;
        if (p.a.fin and !p.b.shut) self.fin_waiting -= 1;
        if (p.b.fin and !p.a.shut) self.fin_waiting -= 1;
        const qa = p.a.final orelse sys.bytesWritten(p.a.fd) orelse p.a.base;
        const qb = p.b.final orelse if (sys.bytesWritten(p.b.fd)) |w| w - sys.SYN_COUNTED_ACTIVE else p.b.base;
        if (reason == .a_reset or reason == .b_reset) {
            sys.setLingerZero(p.a.fd);
            sys.setLingerZero(p.b.fd);
        }
        // Members first: the program stops running on them before their peer entries go.
        _ = bpf.remove(self.members, p.a.cookie);
        _ = bpf.remove(self.members, p.b.cookie);
        _ = bpf.remove(self.peers, p.a.cookie);
        _ = bpf.remove(self.peers, p.b.cookie);
        _ = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_DEL, p.a.fd, null);
        _ = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_DEL, p.b.fd, null);
        sys.closeFd(p.a.fd);
        sys.closeFd(p.b.fd);
        if (p.prev) |pv| pv.next = p.next else if (self.live == p) self.live = p.next;
        if (p.next) |nx| nx.prev = p.prev;
        p.prev = null;
        p.next = null;
        p.link = self.dead;
        self.dead = p;
        self.queue.push(.{
            .id = p.id,
            .a_to_b = qb -| p.b.base,
            .b_to_a = qa -| p.a.base,
            .reason = @intFromEnum(reason),
            .err = err,
        });
    }

    fn freeDead(self: *Engine) void {
        while (self.dead) |p| {
            self.dead = p.link;
            self.gpa.destroy(p);
        }
    }
};

/// Can this host run the sockmap relay? 0, or -errno of the first refusal (maps, program, attach).
pub fn probe(gpa: std.mem.Allocator) c_int {
    var e = Engine{ .gpa = gpa, .queue = completion.Queue.init(gpa) };
    defer e.closeAll();
    return e.setUp();
}

// ---------------------------------------------------------------------------------------------
// Tests: real loopback TCP (test_rig.zig). They need CAP_BPF and CAP_NET_ADMIN; without them the
// engine is refused and the tests say so by skipping (the refusal itself is what JS falls back on).
const testing = std.testing;
const rig = @import("test_rig.zig");
const Rig = rig.Rig;
const sleepMs = sys.sleepMs;

fn engineOrSkip() !*Engine {
    return Engine.create(testing.allocator) catch |e| {
        std.debug.print("sockmap refused here ({d}): skipping\n", .{Engine.last_error});
        if (e == error.Refused) return error.SkipZigTest;
        return e;
    };
}

test "the verdict program loads and attaches here" {
    try testing.expectEqual(@as(c_int, 0), probe(testing.allocator));
}

test "sockmap: bytes both ways, FIN passed on after the bytes, counts and reason come back" {
    const e = try engineOrSkip();
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 42));
    const total: usize = 64 << 20;
    const t = try std.Thread.spawn(.{}, rig.writerThread, .{ r.c, total });
    const got = try rig.readToEof(r.b);
    t.join();
    try testing.expectEqual(@as(u64, total), got.n);
    var expect_sum: u64 = 0;
    for (0..total) |i| expect_sum +%= @as(u8, @truncate((i % 65536) *% 7));
    try testing.expectEqual(expect_sum, got.sum);
    try rig.writeAll(r.b, "reply");
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    const back = try rig.readToEof(r.c);
    try testing.expectEqual(@as(u64, 5), back.n);
    const rec = try rig.waitRecord(e);
    try testing.expectEqual(@as(u64, 42), rec.id);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, total), rec.a_to_b);
    try testing.expectEqual(@as(u64, 5), rec.b_to_a);
    try testing.expectEqual(@as(i32, 0), e.activeCount());
}

test "sockmap: bytes that arrived before the handover are passed on without a further segment" {
    const e = try engineOrSkip();
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try rig.writeAll(r.c, "early request");
    try rig.writeAll(r.b, "server greeting");
    rig.sleepMs(20); // both sit in the proxy sockets' receive queues
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 1));
    var buf: [32]u8 = undefined;
    try testing.expectEqual(@as(u64, 0), try readN(r.b, buf[0..13]));
    try testing.expectEqualStrings("early request", buf[0..13]);
    _ = try readN(r.c, buf[0..15]);
    try testing.expectEqualStrings("server greeting", buf[0..15]);
}

/// Read exactly buf.len bytes (blocking); 0 on success.
fn readN(fd: i32, buf: []u8) !u64 {
    var got: usize = 0;
    while (got < buf.len) {
        const rc = linux.read(fd, buf[got..].ptr, buf.len - got);
        if (linux.errno(rc) != .SUCCESS or rc == 0) return error.ReadFailed;
        got += rc;
    }
    return 0;
}

test "sockmap: half-close, the backend answers after the client's FIN" {
    const e = try engineOrSkip();
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 7));
    try rig.writeAll(r.c, "question");
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    const q = try rig.readToEof(r.b);
    try testing.expectEqual(@as(u64, 8), q.n);
    try rig.writeAll(r.b, "answer after FIN");
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    const a = try rig.readToEof(r.c);
    try testing.expectEqual(@as(u64, 16), a.n);
    const rec = try rig.waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, 8), rec.a_to_b);
    try testing.expectEqual(@as(u64, 16), rec.b_to_a);
}

test "sockmap: a client RST reaches the backend as a reset" {
    const e = try engineOrSkip();
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 9));
    try rig.writeAll(r.c, "hello");
    var buf: [5]u8 = undefined;
    _ = try readN(r.b, &buf);
    sys.setLingerZero(r.c);
    sys.closeFd(r.c);
    r.c = -1;
    const rec = try rig.waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.a_reset), rec.reason);
    sys.closeFd(r.p1);
    r.p1 = -1;
    sys.closeFd(r.p2);
    r.p2 = -1;
    try testing.expectError(error.ConnReset, rig.readToEof(r.b));
}

test "sockmap: idle timeout completes a silent pair" {
    const e = try engineOrSkip();
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    const t0 = sys.nowMs();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 200, 11));
    try rig.writeAll(r.c, "x");
    const rec = try rig.waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.idle_timeout), rec.reason);
    try testing.expect(sys.nowMs() - t0 >= 190);
    try testing.expectEqual(@as(u64, 1), rec.a_to_b);
}

test "sockmap: a unix socket is refused and nothing is taken over" {
    const e = try engineOrSkip();
    defer e.destroy();
    var sv: [2]i32 = undefined;
    _ = linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0, &sv);
    defer sys.closeFd(sv[0]);
    defer sys.closeFd(sv[1]);
    try testing.expectEqual(sys.errnoInt(.PROTONOSUPPORT), e.add(sv[0], sv[1], 0, 1));
    try testing.expectEqual(@as(i32, 0), e.activeCount());
}

test "sockmap: 200 pairs at once, then shutdown completes the live ones" {
    const e = try engineOrSkip();
    var rigs: [200]Rig = undefined;
    for (&rigs, 0..) |*r, i| {
        r.* = try Rig.init();
        try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, i));
    }
    defer for (rigs) |r| r.deinit();
    for (rigs) |r| {
        try rig.writeAll(r.c, "ping");
        var buf: [4]u8 = undefined;
        _ = try readN(r.b, &buf);
        try testing.expectEqualStrings("ping", &buf);
    }
    try testing.expectEqual(@as(i32, 200), e.activeCount());
    e.destroy();
}

test "sockmap: a reader that stops does not hold the writer back (kernel backlog), all arrives after" {
    const e = try engineOrSkip();
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 3));
    const total: usize = 128 << 20;
    const t = try std.Thread.spawn(.{}, rig.writerThread, .{ r.b, total });
    // The writer finishes although the client reads nothing: the bytes wait in kernel memory.
    t.join();
    const got = try rig.readToEof(r.c);
    try testing.expectEqual(@as(u64, total), got.n);
    var expect_sum: u64 = 0;
    for (0..total) |i| expect_sum +%= @as(u8, @truncate((i % 65536) *% 7));
    try testing.expectEqual(expect_sum, got.sum);
}
