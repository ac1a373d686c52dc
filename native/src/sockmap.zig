//! The sockmap relay engine: the kernel moves the bytes of a connected TCP pair by itself. An
//! sk_skb stream_verdict program (native/bpf/relay.bpf.c) redirects every segment that arrives on
//! one socket to the egress of its peer, in softirq/kworker context: no thread of ours and no
//! syscall per read or write, and the payload never reaches userspace.
//!
//! Maps (all keyed by socket cookie, SO_COOKIE):
//! - `peers` (SOCKHASH): cookie(a) -> b and cookie(b) -> a. The program looks its own cookie up here
//!   and redirects to the socket it finds; no program is attached to this map.
//! - `members` (SOCKHASH): cookie(x) -> x. The program is attached here: a socket runs it while it
//!   is a member. Taking a socket out of `members` PAUSES it as a source: its bytes stay in its own
//!   receive queue and TCP's window closes on its sender, as with any socket nobody reads.
//! - `slots` (HASH) cookie -> index, and `counts` (ARRAY, mmapped here): the program adds every
//!   byte it redirects from a socket to that socket's counter, so this thread sees how much each
//!   source has pushed without a syscall.
//! A pair is put into `peers` first and into `members` second, so no socket ever runs the program
//! before its peer entry exists (a miss would SK_PASS bytes into a queue no one forwards).
//! Bytes that reached a socket before it became a member wait in its receive queue, which the
//! verdict only reads on the next data_ready; setting SO_RCVLOWAT calls tcp_data_ready() and so
//! pushes them through the program at once, in order, ahead of anything later.
//! The caller (JS) must have written the bytes it already read to the peer BEFORE `add`: nothing
//! of a's can then be redirected ahead of them.
//!
//! What the program does not do, this file's one thread (its own epoll) does:
//! - Backpressure. The kernel takes a redirected segment off the source's receive queue at once and
//!   queues it on the destination's redirect backlog, which has no bound: a reader that stops would
//!   let its sender fill kernel memory. So: once a source's count is PAUSE_AT bytes ahead of what its
//!   destination socket has taken (acknowledged + SIOCOUTQ), the source leaves `members`; once the
//!   destination is within RESUME_AT, it joins again (and is kicked, see above). The counts are
//!   scanned every FAST_TICK_MS while bytes move (memory reads; a syscall only for a source that
//!   has moved PAUSE_AT since its destination was last looked at), and a paused source is looked at
//!   when its destination's buffer frees up (EPOLLOUT) and on every sweep. Overshoot is what a
//!   sender can push in one tick.
//! - A paused source whose FIN arrives cannot join `members` again (the kernel refuses a socket that
//!   is not ESTABLISHED). If bytes still wait in its receive queue, only a reader can move them now:
//!   the pair MIGRATES. Both sources are paused, and once every redirected byte has been taken by
//!   its destination, the pair leaves the maps and completes with reason `migrate` and its counts;
//!   the caller relays the rest (splice, or userspace), from bytes that are all still in the kernel.
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
/// The program's map symbols, in the order of the fds patched into it.
const MAP_SYMBOLS = [_][]const u8{ "sock_pairs", "sock_slots", "slot_bytes" };
/// Pairs the maps can hold (each pair is two entries in each map). A SOCKHASH allocates its
/// buckets up front: 2^18 entries cost about 4 MiB of kernel memory per map; the counters 2 MiB.
pub const MAX_PAIRS = 1 << 17;
/// A source pauses once this many of its redirected bytes are not yet in its destination socket:
/// about what a splice pipe holds, so both kernel engines buffer alike per stalled direction.
pub const PAUSE_AT: u64 = 1 << 20;
/// ... and resumes once no more than this many are left: far enough below PAUSE_AT that a slow
/// reader costs a pause and a resume per 768 KiB, not per segment.
pub const RESUME_AT: u64 = 256 << 10;
/// The counters' scan period while bytes move (and for FAST_SPELL_MS after they last did, or after
/// a pair came in or resumed); otherwise SLOW_TICK_MS. The overshoot of a source whose destination
/// stops is what it can send in one period: 2 ms of a fast stream, or 25 ms of one that starts
/// after a quiet spell.
const FAST_TICK_MS = 2;
const FAST_SPELL_MS = 250;
const SLOW_TICK_MS = 25;
const MAX_EVENTS = 256;
const SO_RCVLOWAT = 18;
/// A paused socket's SO_RCVLOWAT (see `pause`): more than can arrive between two syscalls. The
/// kernel grows the receive buffer to hold it, so a paused source queues up to about this much.
const MUTE_LOWAT: i32 = 8 << 20;
const TCP_ESTABLISHED: u8 = 1;
const TCP_CLOSE = sys.TCP_CLOSE;

const Side = struct {
    fd: i32,
    cookie: u64,
    /// 1 for the side we connected (its acknowledged count includes its SYN), 0 for the accepted one
    syn: u64,
    /// payload bytes written into this socket before `add` (by JS): the engine counts from here
    base: u64 = 0,
    /// payload written into this socket when we shut its write side (the FIN then counts one more)
    final: ?u64 = null,
    /// RDHUP seen: this side's peer sent FIN
    fin: bool = false,
    /// we shut this side's write direction (passed the other peer's FIN on)
    shut: bool = false,
    // ---- this side as a source (its bytes redirected to the other side) ----
    /// its counter in `counts`, and the counter's value at `add`
    slot: u32,
    moved_base: u64,
    /// out of `members`: its bytes wait in its own receive queue
    paused: bool = false,
    /// what the other side had taken when last looked at (only grows: a lower bound)
    peer_took: u64 = 0,
    /// the counter at the last scan, to tell whether bytes are moving
    seen: u64 = 0,
};

/// Payload bytes written into `s` since the connection began, or null when unreadable.
fn written(s: *const Side) ?u64 {
    return if (sys.bytesWritten(s.fd)) |w| w -| s.syn else null;
}

const Pair = struct {
    id: u64,
    a: Side,
    b: Side,
    idle_ms: i64,
    next_idle_check: i64 = 0,
    done: bool = false,
    /// a paused source cannot rejoin: waiting for both backlogs to empty, then `migrate`
    migrating: bool = false,
    prev: ?*Pair = null,
    next: ?*Pair = null,
    /// incoming list, then the dead list
    link: ?*Pair = null,
};

/// Indexes into `counts` (two per pair), handed out oldest-freed first: a late increment from a
/// program run that raced a pair's removal then lands on a counter nobody reads for a long while.
const SlotRing = struct {
    free: []u32,
    head: usize = 0,
    len: usize,

    fn init(gpa: std.mem.Allocator) !SlotRing {
        const free = try gpa.alloc(u32, MAX_PAIRS);
        for (free, 0..) |*x, i| x.* = @intCast(i);
        return .{ .free = free, .len = MAX_PAIRS };
    }
    fn take(self: *SlotRing) ?u32 {
        if (self.len == 0) return null;
        const v = self.free[self.head];
        self.head = (self.head + 1) % MAX_PAIRS;
        self.len -= 1;
        return v;
    }
    fn give(self: *SlotRing, v: u32) void {
        self.free[(self.head + self.len) % MAX_PAIRS] = v;
        self.len += 1;
    }
};

pub const Engine = struct {
    gpa: std.mem.Allocator,
    peers: i32 = -1,
    members: i32 = -1,
    slots: i32 = -1,
    counts_map: i32 = -1,
    counts: []u64 = &.{},
    prog: i32 = -1,
    epfd: i32 = -1,
    evfd: i32 = -1,
    thread: ?std.Thread = null,
    stopping: bool = false,
    /// guards `incoming` and `ring` (add runs on the caller's thread)
    lock: sys.Lock = .{},
    incoming: ?*Pair = null,
    ring: SlotRing = .{ .free = &.{}, .len = 0 },
    live: ?*Pair = null,
    dead: ?*Pair = null,
    /// pairs waiting for a backlog to drain before their FIN can go on
    fin_waiting: u32 = 0,
    /// scan every FAST_TICK_MS until then: bytes moved, a pair came in or resumed less than
    /// FAST_SPELL_MS ago
    fast_until: i64 = 0,
    now: i64 = 0,
    next_scan: i64 = 0,
    next_sweep: i64 = 0,
    queue: completion.Queue,
    /// diagnostics (tests, `sy_sockmap_stat`): pauses and migrations so far
    pauses: u64 = 0,
    migrations: u64 = 0,

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
        self.ring = try SlotRing.init(gpa);
        errdefer gpa.free(self.ring.free);
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
        self.slots = bpf.createCookieIndex(2 * MAX_PAIRS);
        if (self.slots < 0) return self.slots;
        self.counts_map = bpf.createCounters(2 * MAX_PAIRS);
        if (self.counts_map < 0) return self.counts_map;
        self.counts = bpf.mapCounters(self.counts_map, 2 * MAX_PAIRS) orelse return sys.errnoInt(.NOMEM);
        var prog = bpf.parse(self.gpa, OBJECT, &MAP_SYMBOLS) catch return sys.errnoInt(.NOEXEC);
        defer self.gpa.free(prog.insns);
        bpf.patchMaps(&prog, &.{ self.peers, self.slots, self.counts_map });
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
        if (self.counts.len > 0) bpf.unmapCounters(self.counts);
        self.counts = &.{};
        // Closing the maps and the program detaches everything (the kernel frees them with the last fd).
        for ([_]i32{ self.members, self.peers, self.slots, self.counts_map, self.prog, self.epfd, self.evfd }) |fd| sys.closeFd(fd);
    }

    /// Stop the thread; live pairs complete with reason `shutdown`.
    pub fn destroy(self: *Engine) void {
        @atomicStore(bool, &self.stopping, true, .release);
        self.wake();
        if (self.thread) |t| t.join();
        self.closeAll();
        self.queue.deinit();
        self.gpa.free(self.ring.free);
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
    /// not ESTABLISHED any more (a FIN already arrived: the caller relays it itself), ENOSPC when
    /// MAX_PAIRS pairs are relayed already.
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
        const ca = bpf.socketCookie(da) orelse return sys.errnoInt(.PROTONOSUPPORT);
        const cb = bpf.socketCookie(db) orelse return sys.errnoInt(.PROTONOSUPPORT);
        var a = Side{ .fd = da, .cookie = ca, .syn = 0, .slot = 0, .moved_base = 0 };
        var b = Side{ .fd = db, .cookie = cb, .syn = sys.SYN_COUNTED_ACTIVE, .slot = 0, .moved_base = 0 };
        a.base = written(&a) orelse return sys.errnoInt(.PROTONOSUPPORT);
        b.base = written(&b) orelse return sys.errnoInt(.PROTONOSUPPORT);
        const p = self.gpa.create(Pair) catch return sys.errnoInt(.NOMEM);
        var slot_pair: ?u32 = null;
        defer if (!ok) {
            if (slot_pair) |sp| self.giveSlots(sp);
            self.gpa.destroy(p);
        };
        self.lock.lock();
        slot_pair = self.ring.take();
        self.lock.unlock();
        const sp = slot_pair orelse return sys.errnoInt(.NOSPC);
        a.slot = 2 * sp;
        b.slot = 2 * sp + 1;
        a.moved_base = @atomicLoad(u64, &self.counts[a.slot], .monotonic);
        b.moved_base = @atomicLoad(u64, &self.counts[b.slot], .monotonic);
        a.seen = a.moved_base;
        b.seen = b.moved_base;
        p.* = .{ .id = id, .a = a, .b = b, .idle_ms = idle_ms };
        const rc = self.join(ca, cb, da, db, a.slot, b.slot);
        if (rc < 0) return rc;
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

    /// Both sockets into the maps: slots, then peers, then members (see the top of the file).
    /// All or nothing: a refusal undoes what went in and returns its -errno.
    fn join(self: *Engine, ca: u64, cb: u64, da: i32, db: i32, sa: u32, sb: u32) c_int {
        const steps = [_]struct { map: i32, key: u64, value: u32, socket: bool }{
            .{ .map = self.slots, .key = ca, .value = sa, .socket = false },
            .{ .map = self.slots, .key = cb, .value = sb, .socket = false },
            .{ .map = self.peers, .key = ca, .value = @intCast(db), .socket = true },
            .{ .map = self.peers, .key = cb, .value = @intCast(da), .socket = true },
            .{ .map = self.members, .key = ca, .value = @intCast(da), .socket = true },
            .{ .map = self.members, .key = cb, .value = @intCast(db), .socket = true },
        };
        for (steps, 0..) |step, i| {
            const rc = bpf.insertU32(step.map, step.key, step.value);
            if (rc == 0) continue;
            var j = i;
            while (j > 0) {
                j -= 1;
                _ = bpf.remove(steps[j].map, steps[j].key);
            }
            return rc;
        }
        return 0;
    }

    fn giveSlots(self: *Engine, slot_pair: u32) void {
        self.lock.lock();
        self.ring.give(slot_pair);
        self.lock.unlock();
    }

    /// SO_RCVLOWAT 1 (the default): tcp_set_rcvlowat() calls tcp_data_ready(), which runs the
    /// program over bytes already queued; otherwise they would wait for the next segment.
    fn kick(fd: i32) void {
        setLowat(fd, 1);
    }

    fn setLowat(fd: i32, bytes: i32) void {
        _ = linux.setsockopt(fd, linux.SOL.SOCKET, SO_RCVLOWAT, @ptrCast(&bytes), @sizeOf(i32));
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
            // A FIN waiting for a backlog, or bytes moving, are looked at often; otherwise the
            // sweep's pace is enough.
            const timeout: i32 = if (self.fin_waiting > 0 or self.now < self.fast_until) FAST_TICK_MS else SLOW_TICK_MS;
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
            self.sweep();
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
            // A new pair may start at full speed: scan fast for a while.
            self.fast_until = self.now + FAST_SPELL_MS;
            // Edge-triggered RDHUP (a FIN to pass on) and OUT (a full socket has room again: a
            // paused source may resume). The data itself never wakes us (EPOLLIN is not asked for).
            var ev = linux.epoll_event{ .events = linux.EPOLL.RDHUP | linux.EPOLL.OUT | linux.EPOLL.ET, .data = .{ .ptr = @intFromPtr(p) } };
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
        const other = if (side_b) &p.a else &p.b;
        if (events & linux.EPOLL.ERR != 0) {
            const err = sys.sockError(s.fd);
            if (err != 0) {
                const e: linux.E = @enumFromInt(@as(u16, @intCast(err)));
                if (e == .CONNRESET or e == .PIPE) return self.complete(p, if (side_b) .b_reset else .a_reset, 0);
                return self.complete(p, if (side_b) .b_error else .a_error, err);
            }
        }
        if (events & (linux.EPOLL.RDHUP | linux.EPOLL.HUP | linux.EPOLL.ERR) != 0) self.check(p, side_b);
        // s had room again: the direction into s may have caught up.
        if (!p.done and events & linux.EPOLL.OUT != 0 and (other.paused or p.migrating)) self.pace(p, other, s, true);
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
        // Every byte s received (its FIN counts 1 in bytes_received) is written into `other`? Bytes
        // still in s's own receive queue (s paused) are received and not written: not yet.
        const w = written(other) orelse return;
        if (w + 1 < info.bytes_received) return;
        other.final = w;
        _ = linux.shutdown(other.fd, linux.SHUT.WR);
        other.shut = true;
        self.fin_waiting -= 1;
        if (p.a.shut and p.b.shut) self.complete(p, .done, 0);
    }

    fn sweep(self: *Engine) void {
        // At most once a fast tick however many events wake us: a sweep visits every live pair.
        if (self.now < self.next_scan) return;
        self.next_scan = self.now + FAST_TICK_MS;
        const full = self.now >= self.next_sweep;
        if (full) self.next_sweep = self.now + SLOW_TICK_MS;
        var it = self.live;
        while (it) |p| {
            it = p.next;
            if (p.a.fin and !p.b.shut) self.check(p, false);
            if (!p.done and p.b.fin and !p.a.shut) self.check(p, true);
            if (!p.done) self.pace(p, &p.a, &p.b, full);
            if (!p.done) self.pace(p, &p.b, &p.a, full);
            if (p.done or !full or p.idle_ms <= 0 or self.now < p.next_idle_check) continue;
            p.next_idle_check = self.now + idlePeriod(p);
            const ia = sys.tcpInfo(p.a.fd) orelse continue;
            const ib = sys.tcpInfo(p.b.fd) orelse continue;
            if (@min(ia.last_data_recv, ib.last_data_recv) >= p.idle_ms) self.complete(p, .idle_timeout, 0);
        }
    }

    /// Bytes the program has redirected from `s` since `add`.
    fn moved(self: *const Engine, s: *const Side) u64 {
        return @atomicLoad(u64, &self.counts[s.slot], .monotonic) -% s.moved_base;
    }

    /// Backpressure for the direction src -> dst. A running source costs a memory read unless it
    /// may be PAUSE_AT ahead; a paused one (or a migrating pair) is looked at when `look` (a sweep,
    /// or room in dst).
    fn pace(self: *Engine, p: *Pair, src: *Side, dst: *Side, look: bool) void {
        const m = self.moved(src);
        if (m != src.seen) {
            src.seen = m;
            self.fast_until = self.now + FAST_SPELL_MS;
        }
        if (p.migrating) {
            if (look) self.migrateIfDrained(p);
            return;
        }
        if (dst.shut) return; // this direction is over
        if (!src.paused) {
            if (m -% src.peer_took < PAUSE_AT) return;
            src.peer_took = (written(dst) orelse return) -% dst.base;
            if (m -% src.peer_took >= PAUSE_AT) self.pause(p, src);
            return;
        }
        if (!look) return;
        src.peer_took = (written(dst) orelse return) -% dst.base;
        if (m -% src.peer_took > RESUME_AT) return;
        if (bpf.insertU32(self.members, src.cookie, @intCast(src.fd)) == 0) {
            // Its bytes wait unseen until the kick: the low-water mark is still MUTE_LOWAT.
            src.paused = false;
            self.fast_until = self.now + FAST_SPELL_MS; // it may run at full speed at once
            kick(src.fd);
            return;
        }
        // Refused: src is not ESTABLISHED any more, its FIN arrived while it was paused. Bytes
        // still in its receive queue can only be read now: migrate. With none, the FIN check
        // passes the FIN on once dst has taken the rest.
        if (!self.bytesWaitIn(src, dst)) return;
        p.migrating = true;
        self.migrations += 1;
        self.pause(p, if (src == &p.a) &p.b else &p.a);
        if (!p.done) self.migrateIfDrained(p);
    }

    /// Whether bytes wait in `src`'s own receive queue: everything it received (less its FIN) that
    /// neither JS passed on before `add` (dst.base) nor the program redirected. SIOCINQ cannot say:
    /// on a socket in a sockmap it counts the psock's queue, not TCP's.
    fn bytesWaitIn(self: *const Engine, src: *const Side, dst: *const Side) bool {
        const info = sys.tcpInfo(src.fd) orelse return false;
        const fin: u64 = if (info.state == 1) 0 else 1;
        return info.bytes_received -| fin > dst.base + self.moved(src);
    }

    /// Take `s` out of `members`: its bytes then wait in its own receive queue. Removing a socket
    /// from the map stops the program under a verdict that may be running on another CPU over the
    /// same socket, and the kernel drops the skbs that run still holds (sk_psock_verdict_recv finds
    /// no program: __SK_DROP). So first a high SO_RCVLOWAT: setting it takes the socket's lock,
    /// which waits out a running verdict, and from then on arriving bytes do not call data_ready
    /// (the verdict) until MUTE_LOWAT of them wait. Left uncovered: a FIN, or TCP memory pressure,
    /// calls data_ready whatever the low-water mark; the drop counter (SO_MEMINFO) is read around
    /// the removal, and a drop there completes the pair with an error (both peers get a reset)
    /// rather than relaying a stream with a hole.
    fn pause(self: *Engine, p: *Pair, s: *Side) void {
        if (s.paused) return;
        const drops = sys.socketDrops(s.fd);
        setLowat(s.fd, MUTE_LOWAT);
        // A FIN here bounds what can still come: nothing to hold back.
        if (sys.tcpState(s.fd) != TCP_ESTABLISHED) return setLowat(s.fd, 1);
        _ = bpf.remove(self.members, s.cookie);
        s.paused = true;
        self.pauses += 1;
        if (sys.socketDrops(s.fd) != drops) self.complete(p, if (s == &p.b) .b_error else .a_error, @intFromEnum(linux.E.IO));
    }

    /// A migrating pair leaves once every byte redirected either way is in its destination socket
    /// (exact: the program's count against acknowledged + SIOCOUTQ), so nothing is left in a
    /// redirect backlog when the entries go (deleting them would purge it).
    fn migrateIfDrained(self: *Engine, p: *Pair) void {
        for ([_][2]*Side{ .{ &p.a, &p.b }, .{ &p.b, &p.a } }) |dir| {
            const took = (written(dir[1]) orelse return) -% dir[1].base;
            if (took < self.moved(dir[0])) return;
        }
        self.complete(p, .migrate, 0);
    }

    fn complete(self: *Engine, p: *Pair, reason: Reason, err: u32) void {
        if (p.done) return;
        p.done = true;
        if (p.a.fin and !p.b.shut) self.fin_waiting -= 1;
        if (p.b.fin and !p.a.shut) self.fin_waiting -= 1;
        const into_a = p.a.final orelse written(&p.a) orelse p.a.base;
        const into_b = p.b.final orelse written(&p.b) orelse p.b.base;
        if (reason == .a_reset or reason == .b_reset) {
            sys.setLingerZero(p.a.fd);
            sys.setLingerZero(p.b.fd);
        }
        // Members first: the program stops running on them before their peer entries go.
        for ([_]i32{ self.members, self.peers, self.slots }) |map| {
            _ = bpf.remove(map, p.a.cookie);
            _ = bpf.remove(map, p.b.cookie);
        }
        self.giveSlots(p.a.slot / 2);
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
            .a_to_b = into_b -| p.b.base,
            .b_to_a = into_a -| p.a.base,
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
    var outcome = Outcome{};
    const caller = try std.Thread.spawn(.{}, callerThread, .{ e, r, &outcome });
    const total: usize = 64 << 20;
    const t = try std.Thread.spawn(.{}, rig.writerThread, .{ r.c, total });
    const got = try rig.readToEof(r.b);
    t.join();
    try testing.expectEqual(@as(u64, total), got.n);
    try testing.expectEqual(rig.expectedSum(total), got.sum);
    try rig.writeAll(r.b, "reply");
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    const back = try rig.readToEof(r.c);
    try testing.expectEqual(@as(u64, 5), back.n);
    caller.join();
    const rec = outcome.record orelse return error.NoCompletion;
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

test "sockmap: a reader that stops holds the writer back (bounded), all arrives after" {
    const e = try engineOrSkip();
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 3));
    var outcome = Outcome{};
    const caller = try std.Thread.spawn(.{}, callerThread, .{ e, r, &outcome });
    const total: usize = 512 << 20;
    var progress = rig.Progress{};
    const t = try std.Thread.spawn(.{}, rig.countingWriter, .{ r.b, total, &progress });
    // Nobody reads c: the writer must stop after the buffers on the way and PAUSE_AT (plus what
    // one tick lets through), not after everything.
    const stalled = rig.waitStalled(&progress, 300);
    std.debug.print("sockmap: writer stalled after {d} KiB with the reader stopped\n", .{stalled >> 10});
    try testing.expect(stalled < 64 << 20);
    try testing.expect(e.pauses >= 1);
    const got = try rig.readToEof(r.c);
    t.join();
    try testing.expectEqual(@as(u64, total), got.n);
    try testing.expectEqual(rig.expectedSum(total), got.sum);
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    caller.join();
    const rec = outcome.record orelse return error.NoCompletion;
    try testing.expectEqual(@as(u64, total), rec.b_to_a);
}

test "sockmap: a paused source whose FIN arrives migrates; the caller relays the rest, nothing lost" {
    const e = try engineOrSkip();
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    // Small buffers toward the client, so the backlog builds; room for everything between the
    // backend and the proxy, so the backend finishes (and sends its FIN) while its side is paused.
    const SO_RCVBUFFORCE = 33;
    const SO_SNDBUFFORCE = 32;
    rig.setBuf(r.c, linux.SO.RCVBUF, 16 << 10);
    rig.setBuf(r.p1, linux.SO.SNDBUF, 16 << 10);
    rig.setBuf(r.p2, SO_RCVBUFFORCE, 128 << 20);
    rig.setBuf(r.b, SO_SNDBUFFORCE, 128 << 20);
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 5));
    var outcome = Outcome{};
    const caller = try std.Thread.spawn(.{}, callerThread, .{ e, r, &outcome });
    const total: usize = 48 << 20;
    var progress = rig.Progress{};
    const t = try std.Thread.spawn(.{}, rig.countingWriter, .{ r.b, total, &progress });
    t.join(); // all written, FIN sent: the proxy holds the rest while nobody reads
    try testing.expect(e.pauses >= 1);
    // The client reads; once the backlog is down, the paused side cannot rejoin (its FIN came).
    const got = try rig.readToEof(r.c);
    try testing.expectEqual(@as(u64, total), got.n);
    try testing.expectEqual(rig.expectedSum(total), got.sum);
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    caller.join();
    try testing.expectEqual(@as(u64, 1), e.migrations);
    const kernel = outcome.migrated orelse return error.NoMigration;
    try testing.expect(kernel.b_to_a > 0 and kernel.b_to_a < total);
    const rec = outcome.record orelse return error.NoCompletion;
    try testing.expectEqual(@as(u64, total), rec.b_to_a);
    try testing.expectEqual(@as(u64, 0), rec.a_to_b);
}

/// What the caller of the engine (JS) ends up reporting for a pair.
const Outcome = struct {
    /// the final record: the engine's, or for a migrated pair its counts plus the caller's
    record: ?Record = null,
    /// the engine's `migrate` record, if the pair migrated
    migrated: ?Record = null,
};

/// Stands in for JS: waits for the pair's record and, on `migrate`, relays the rest itself (a
/// blocking copy each way, as the splice engine or the userspace relay would), adding its counts.
fn callerThread(e: *Engine, r: Rig, out: *Outcome) void {
    var recs: [1]Record = undefined;
    const deadline = sys.nowMs() + 120_000;
    while (e.poll(&recs) == 0) {
        if (sys.nowMs() > deadline) return;
        sleepMs(1);
    }
    var rec = recs[0];
    if (rec.reason == @intFromEnum(Reason.migrate)) {
        out.migrated = rec;
        var up: u64 = 0;
        var down: u64 = 0;
        const t1 = std.Thread.spawn(.{}, copyToEof, .{ r.p1, r.p2, &up }) catch return;
        const t2 = std.Thread.spawn(.{}, copyToEof, .{ r.p2, r.p1, &down }) catch return;
        t1.join();
        t2.join();
        rec.a_to_b += up;
        rec.b_to_a += down;
        rec.reason = @intFromEnum(Reason.done);
    }
    out.record = rec;
}

/// Copy from `from` to `to` until EOF, then FIN on `to`; `moved` counts. The proxy-side fds are
/// nonblocking (the engine's dup shares the file's O_NONBLOCK): EAGAIN waits a millisecond.
fn copyToEof(from: i32, to: i32, moved: *u64) void {
    var buf: [65536]u8 = undefined;
    while (true) {
        const rc = linux.read(from, &buf, buf.len);
        if (linux.errno(rc) == .AGAIN) {
            sleepMs(1);
            continue;
        }
        if (linux.errno(rc) != .SUCCESS or rc == 0) break;
        var off: usize = 0;
        while (off < rc) {
            const w = linux.write(to, buf[off..].ptr, rc - off);
            if (linux.errno(w) == .AGAIN) {
                sleepMs(1);
                continue;
            }
            if (linux.errno(w) != .SUCCESS) return;
            off += w;
        }
        moved.* += rc;
    }
    _ = linux.shutdown(to, linux.SHUT.WR);
}
