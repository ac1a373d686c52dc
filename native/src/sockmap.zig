//! The sockmap relay engine: the kernel moves the bytes of a connected TCP pair by itself. An
//! sk_skb stream_verdict program (native/bpf/relay.bpf.c) redirects every segment that arrives on
//! one socket to the egress of its peer, in softirq/kworker context: no thread of ours and no
//! syscall per read or write, and the payload never reaches userspace.
//!
//! Maps (all keyed by socket cookie, SO_COOKIE):
//! - `peers` (SOCKHASH): cookie(a) -> b and cookie(b) -> a. The program looks its own cookie up here
//!   and redirects to the socket it finds; no program is attached to this map.
//! - `members` (SOCKHASH): cookie(x) -> x. The program is attached here: a socket runs it while it
//!   is a member. A socket leaves `members` only when no byte can be on its way through the
//!   program (the pair is done, reset, idle, or the process stops), never while bytes flow: the
//!   kernel stops the program under a verdict that may be running on another CPU, and the skbs
//!   that run holds are dropped or, when the socket joins again, reordered (seen here as lost,
//!   duplicated and misplaced segments in streams of a few hundred MiB).
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
//!   let its sender fill kernel memory. So once a source's count is HAND_BACK_AT bytes ahead of what
//!   its destination socket has taken (acknowledged + SIOCOUTQ), the pair is HANDED BACK to the
//!   caller. Both `peers` entries go (a lookup that misses makes the program SK_PASS: the bytes
//!   then wait in the socket's own queue, charged to its receive buffer, and TCP closes the window
//!   on the sender); once every redirected byte is in its destination, the pair completes with
//!   reason `migrate` and its counts, and the caller relays the rest in userspace, reading the
//!   sockets as usual (a read returns the passed bytes first). The sockets stay in `members` until
//!   they close (closing removes a socket from every map). Splice cannot take such a pair: it reads
//!   TCP's queue, which the program keeps empty. The counts are scanned every FAST_TICK_MS while
//!   bytes move (memory reads; a syscall only for a source that moved HAND_BACK_AT since its
//!   destination was last looked at). Overshoot is what a sender can push in one tick.
//!   The kernel allows this only with the other direction quiet: a socket's passed bytes queue
//!   behind its own redirect backlog (the other direction's bytes) when it has one, uncharged, and
//!   its worker moves none of them until the bytes ahead are taken. A pair whose directions are
//!   both busy is therefore reset (`overflow`) once one falls RESET_AT behind, and so is a pair
//!   being handed back whose uncharged passed bytes pass STRANDED_AT. Bounded kernel memory and
//!   intact streams, at the price of such pairs: splice has no such limit.
//! - FIN: the verdict never sees one. EPOLLRDHUP on a says a's peer is done; once every byte a
//!   received has been written into b (b's bytes acknowledged + SIOCOUTQ >= a's tcp_info
//!   bytes_received, i.e. the redirect backlog is empty), shutdown(b, SHUT_WR). A shutdown sooner would
//!   put the FIN ahead of bytes still in the kworker's backlog.
//! - Reset: EPOLLERR (or a socket found in TCP_CLOSE before we shut its write side) completes the
//!   pair; SO_LINGER 0 on both makes their last close send RST to the other peer too.
//! - Idle timeout: tcp_info's last_data_recv on both sockets, checked every quarter of the timeout.
//! - Removal: entries are deleted when a pair completes, members first (the program stops), then
//!   peers. A normal completion happens only after both backlogs are empty (see FIN) and no byte
//!   can arrive any more, so the deletion (which purges a socket's backlog) loses nothing; after a
//!   reset or an idle timeout nothing is owed. A pair handed back keeps its `members` entries.
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
/// buckets up front: 2^18 entries cost about 4 MiB of kernel memory per map; the counters 4 MiB.
pub const MAX_PAIRS = 1 << 17;
/// Two counters per socket, two sockets per pair.
const COUNTERS = 4 * MAX_PAIRS;
/// A pair is handed back once a source's redirected bytes are this far ahead of what its
/// destination socket has taken: about what one socket's buffers may hold here (tcp_rmem's and
/// tcp_wmem's maxima are 32 and 4 MiB), so a reader that keeps up through scheduling hiccups
/// stays in the kernel, and one that falls behind costs the host no more than a socket would.
pub const HAND_BACK_AT: u64 = 16 << 20;
/// The other direction counts as quiet (a pair may be handed back) with less than this in flight.
pub const QUIET_BELOW: u64 = 1 << 20;
/// A direction this far behind while the other is not quiet resets the pair (see `pace`).
pub const RESET_AT: u64 = 32 << 20;
/// Passed bytes a socket may hold outside its receive buffer's accounting (see handBackIfDrained).
pub const STRANDED_AT: u64 = 32 << 20;
const SIOCINQ = 0x541B;
/// The counters' scan period while bytes move (and for FAST_SPELL_MS after they last did, or after
/// a pair came in); otherwise SLOW_TICK_MS. The overshoot of a source whose destination
/// stops is what it can send in one period: 2 ms of a fast stream, or 25 ms of one that starts
/// after a quiet spell.
const FAST_TICK_MS = 2;
const FAST_SPELL_MS = 250;
const SLOW_TICK_MS = 25;
const MAX_EVENTS = 256;
const SO_RCVLOWAT = 18;
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
    /// its two counters in `counts` (at 2*slot: bytes the program redirected from it; at 2*slot+1:
    /// bytes it passed), and their values at `add`
    slot: u32,
    moved_base: u64 = 0,
    passed_base: u64 = 0,
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
    /// out of `peers` (the program passes its bytes): waiting for both backlogs to empty, then
    /// `migrate`
    handing_back: bool = false,
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
    /// scan every FAST_TICK_MS until then: bytes moved, or a pair came in, less than
    /// FAST_SPELL_MS ago
    fast_until: i64 = 0,
    now: i64 = 0,
    next_scan: i64 = 0,
    next_sweep: i64 = 0,
    queue: completion.Queue,
    /// pairs handed back so far (tests, diagnostics)
    handed_back: u64 = 0,

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
        self.counts_map = bpf.createCounters(COUNTERS);
        if (self.counts_map < 0) return self.counts_map;
        self.counts = bpf.mapCounters(self.counts_map, COUNTERS) orelse return sys.errnoInt(.NOMEM);
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
        var a = Side{ .fd = da, .cookie = ca, .syn = 0, .slot = 0 };
        var b = Side{ .fd = db, .cookie = cb, .syn = sys.SYN_COUNTED_ACTIVE, .slot = 0 };
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
        for ([_]*Side{ &a, &b }) |x| {
            x.moved_base = self.count(x.slot, .redirected);
            x.passed_base = self.count(x.slot, .passed);
        }
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
        const steps = [_]struct { map: i32, key: u64, value: u32 }{
            .{ .map = self.slots, .key = ca, .value = sa },
            .{ .map = self.slots, .key = cb, .value = sb },
            .{ .map = self.peers, .key = ca, .value = @intCast(db) },
            .{ .map = self.peers, .key = cb, .value = @intCast(da) },
            .{ .map = self.members, .key = ca, .value = @intCast(da) },
            .{ .map = self.members, .key = cb, .value = @intCast(db) },
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
            // pair being handed back may be drained). The data itself never wakes us (no EPOLLIN).
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
        if (events & linux.EPOLL.ERR != 0) {
            const err = sys.sockError(s.fd);
            if (err != 0) {
                const e: linux.E = @enumFromInt(@as(u16, @intCast(err)));
                if (e == .CONNRESET or e == .PIPE) return self.complete(p, if (side_b) .b_reset else .a_reset, 0);
                return self.complete(p, if (side_b) .b_error else .a_error, err);
            }
        }
        if (events & (linux.EPOLL.RDHUP | linux.EPOLL.HUP | linux.EPOLL.ERR) != 0) self.check(p, side_b);
        // s had room again: a pair being handed back may be drained now.
        if (!p.done and events & linux.EPOLL.OUT != 0 and p.handing_back) self.handBackIfDrained(p);
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
        // the program passed to s's own queue (handing back) are received and not written: not yet.
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

    const Count = enum(u32) { redirected = 0, passed = 1 };

    fn count(self: *const Engine, slot: u32, which: Count) u64 {
        return @atomicLoad(u64, &self.counts[2 * slot + @intFromEnum(which)], .monotonic);
    }

    /// Bytes the program has redirected from `s` since `add`.
    fn moved(self: *const Engine, s: *const Side) u64 {
        return self.count(s.slot, .redirected) -% s.moved_base;
    }

    /// Bytes the program has passed to `s`'s own queue since `add` (only once handing back).
    fn passed(self: *const Engine, s: *const Side) u64 {
        return self.count(s.slot, .passed) -% s.passed_base;
    }

    /// Backpressure for the direction src -> dst: a memory read unless src may be HAND_BACK_AT
    /// ahead. A pair being handed back is looked at when `look` (a sweep, or room in a socket).
    fn pace(self: *Engine, p: *Pair, src: *Side, dst: *Side, look: bool) void {
        const m = self.moved(src);
        if (m != src.seen) {
            src.seen = m;
            self.fast_until = self.now + FAST_SPELL_MS;
        }
        if (p.handing_back) {
            if (look) self.handBackIfDrained(p);
            return;
        }
        // Saturating: `took` is read after `m`, so bytes redirected in between can make it larger.
        if (m -| src.peer_took < HAND_BACK_AT) return;
        src.peer_took = (written(dst) orelse return) -% dst.base;
        const behind = m -| src.peer_took;
        if (behind < HAND_BACK_AT) return;
        // Handing back needs the other direction quiet: bytes passed to src wait behind src's own
        // redirect backlog (the other direction's bytes) when it has one, uncharged, and the
        // kernel's worker moves neither until the one ahead is taken (seen here: both directions
        // stuck while both readers waited). A busy other direction usually drains within a tick;
        // if this one falls RESET_AT behind first, the pair is reset.
        dst.peer_took = (written(src) orelse return) -% src.base;
        if (self.moved(dst) -| dst.peer_took >= QUIET_BELOW) {
            if (behind >= RESET_AT) self.complete(p, .overflow, 0);
            return;
        }
        // Out of `peers`, both: the program's lookup misses from now on and it passes the bytes
        // to the socket they arrived on. A verdict running meanwhile still finds the entry or not;
        // either way its skb goes somewhere in order (redirected: counted, and waited for below).
        _ = bpf.remove(self.peers, p.a.cookie);
        _ = bpf.remove(self.peers, p.b.cookie);
        p.handing_back = true;
        self.handed_back += 1;
        self.handBackIfDrained(p);
    }

    /// A pair being handed back completes (`migrate`) once every byte redirected either way is in
    /// its destination socket (exact: the program's count against acknowledged + SIOCOUTQ), so the
    /// caller's first write cannot overtake a byte still in a redirect backlog.
    fn handBackIfDrained(self: *Engine, p: *Pair) void {
        // Passed bytes that wait behind the socket's redirect backlog (the kernel queues them there
        // when that backlog is not empty) are not charged to its receive buffer, so TCP does not
        // close the window on their sender: a peer that sends fast while it reads slowly could
        // fill kernel memory through it. Past STRANDED_AT the pair is reset instead.
        for ([_]*Side{ &p.a, &p.b }) |x| {
            var in_queue: i32 = 0; // SIOCINQ on a socket in a sockmap: its psock's charged queue
            if (linux.errno(linux.ioctl(x.fd, SIOCINQ, @intFromPtr(&in_queue))) != .SUCCESS) continue;
            if (self.passed(x) -| @as(u64, @intCast(@max(in_queue, 0))) > STRANDED_AT) return self.complete(p, .overflow, 0);
        }
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
        if (reason == .a_reset or reason == .b_reset or reason == .overflow) {
            sys.setLingerZero(p.a.fd);
            sys.setLingerZero(p.b.fd);
        }
        // Members first: the program stops running on them before their peer entries go. A pair
        // handed back stays in `members` (see the top of the file): its sockets leave the map
        // when they close.
        const maps = [_]i32{ self.members, self.peers, self.slots };
        for (if (reason == .migrate) maps[1..] else maps[0..]) |map| {
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
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 42));
    var outcome = Outcome{};
    const caller = try std.Thread.spawn(.{}, callerThread, .{ e, &r, &outcome });
    const total: usize = 64 << 20;
    const t = try std.Thread.spawn(.{}, rig.writerThread, .{ r.c, total });
    const got = try rig.readVerified(r.b);
    t.join();
    try testing.expectEqual(@as(u64, total), got.n);
    try testing.expectEqual(@as(?u64, null), got.first_bad);
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
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 3));
    var outcome = Outcome{};
    const caller = try std.Thread.spawn(.{}, callerThread, .{ e, &r, &outcome });
    const total: usize = 512 << 20;
    var progress = rig.Progress{};
    const t = try std.Thread.spawn(.{}, rig.countingWriter, .{ r.b, total, &progress });
    // Nobody reads c: the writer must stop after HAND_BACK_AT (plus what one tick lets through)
    // and the buffers on the way, not after everything.
    const stalled = rig.waitStalled(&progress, 300);
    std.debug.print("sockmap: writer stalled after {d} KiB with the reader stopped\n", .{stalled >> 10});
    try testing.expect(stalled < 128 << 20);
    try testing.expectEqual(@as(u64, 1), e.handed_back);
    const got = try rig.readVerified(r.c);
    t.join();
    try testing.expectEqual(@as(u64, total), got.n);
    try testing.expectEqual(@as(?u64, null), got.first_bad);
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    caller.join();
    const rec = outcome.record orelse return error.NoCompletion;
    try testing.expectEqual(@as(u64, total), rec.b_to_a);
}

test "sockmap: both ways at once, readers slower than writers: in order until done or reset, never unbounded" {
    const e = try engineOrSkip();
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 8));
    var outcome = Outcome{};
    const caller = try std.Thread.spawn(.{}, callerThread, .{ e, &r, &outcome });
    const total: usize = 256 << 20;
    const up = try std.Thread.spawn(.{}, rig.writerThread, .{ r.c, total });
    const down = try std.Thread.spawn(.{}, rig.writerThread, .{ r.b, total });
    var at_b: VerifiedRead = .{};
    const reader = try std.Thread.spawn(.{}, VerifiedRead.run, .{ &at_b, r.b });
    const at_c = try rig.readVerified(r.c);
    reader.join();
    up.join();
    down.join();
    caller.join();
    const got_b = at_b.result orelse return error.ReadFailed;
    const rec = outcome.record orelse return error.NoCompletion;
    std.debug.print("sockmap: both ways busy: reason {d}, {d} and {d} MiB arrived\n", .{ rec.reason, at_c.n >> 20, got_b.n >> 20 });
    // Whatever arrived is in order; the pair either completed or was reset for its backlog (the
    // kernel cannot hand back a pair whose directions are both busy: sockmap.zig, `pace`).
    try testing.expectEqual(@as(?u64, null), at_c.first_bad);
    try testing.expectEqual(@as(?u64, null), got_b.first_bad);
    // Reset (RST to both peers; a peer's reader may see it as EOF when its writer took the error).
    if (rec.reason == @intFromEnum(Reason.overflow)) return testing.expect(at_c.n < total and got_b.n < total);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, total), at_c.n);
    try testing.expectEqual(@as(u64, total), got_b.n);
    try testing.expectEqual(@as(u64, total), rec.a_to_b);
    try testing.expectEqual(@as(u64, total), rec.b_to_a);
}

const VerifiedRead = struct {
    result: ?rig.Verified = null,
    fn run(self: *VerifiedRead, fd: i32) void {
        self.result = rig.readVerified(fd) catch null;
    }
};

test "sockmap: a pair handed back after its backend finished: what waits comes out first, nothing lost" {
    const e = try engineOrSkip();
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    // Small buffers toward the client, so the backlog builds; room for everything between the
    // backend and the proxy, so the backend finishes (and sends its FIN) once handed back.
    const SO_RCVBUFFORCE = 33;
    const SO_SNDBUFFORCE = 32;
    rig.setBuf(r.c, linux.SO.RCVBUF, 16 << 10);
    rig.setBuf(r.p1, linux.SO.SNDBUF, 16 << 10);
    rig.setBuf(r.p2, SO_RCVBUFFORCE, 128 << 20);
    rig.setBuf(r.b, SO_SNDBUFFORCE, 128 << 20);
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 5));
    var outcome = Outcome{};
    const caller = try std.Thread.spawn(.{}, callerThread, .{ e, &r, &outcome });
    const total: usize = 48 << 20;
    var progress = rig.Progress{};
    const t = try std.Thread.spawn(.{}, rig.countingWriter, .{ r.b, total, &progress });
    t.join(); // all written, FIN sent: the proxy holds the rest while nobody reads
    try testing.expectEqual(@as(u64, 1), e.handed_back);
    // The client reads: the backlog drains, the pair completes (migrate), the caller relays the rest.
    const got = try rig.readVerified(r.c);
    try testing.expectEqual(@as(u64, total), got.n);
    try testing.expectEqual(@as(?u64, null), got.first_bad);
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    caller.join();
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

/// Stands in for JS: waits for the pair's record and, on `migrate`, relays the rest itself with
/// reads and writes, as the userspace relay does, adding its counts.
fn callerThread(e: *Engine, r: *Rig, out: *Outcome) void {
    var recs: [1]Record = undefined;
    const deadline = sys.nowMs() + 120_000;
    while (e.poll(&recs) == 0) {
        if (sys.nowMs() > deadline) return;
        sleepMs(1);
    }
    var rec = recs[0];
    const reset = rec.reason == @intFromEnum(Reason.a_reset) or rec.reason == @intFromEnum(Reason.b_reset) or rec.reason == @intFromEnum(Reason.overflow);
    if (reset) {
        // As JS does (terminate()): the engine set SO_LINGER 0; closing the last fds sends RST.
        sys.closeFd(r.p1);
        sys.closeFd(r.p2);
        r.p1 = -1;
        r.p2 = -1;
    }
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

/// Copy from `from` to `to` until EOF, then FIN on `to`; `moved` counts. Reads wait for poll() to
/// say readable, as an event loop would (so a socket left with a high SO_RCVLOWAT stalls here);
/// 5 s without it gives up. The proxy-side fds are nonblocking (the engine's dup shares the
/// file's O_NONBLOCK): a full `to` waits a millisecond.
fn copyToEof(from: i32, to: i32, moved: *u64) void {
    var buf: [65536]u8 = undefined;
    while (true) {
        var fds = [_]linux.pollfd{.{ .fd = from, .events = linux.POLL.IN, .revents = 0 }};
        if (linux.poll(&fds, 1, 5000) != 1) return;
        const rc = linux.read(from, &buf, buf.len);
        if (linux.errno(rc) == .AGAIN) continue;
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
