//! The uring relay engine: one io_uring per process, driven by one native thread, moves the bytes of
//! connected socket pairs with multishot receives into a provided-buffer ring and sends from those
//! buffers, so a message costs no system call of its own: the thread makes one io_uring_enter per
//! batch of completions, for every pair at once (no SQPOLL: a polling kernel thread would take one of
//! the host's two cores).
//!
//! - Handover as in splice.zig: `add(fd_a, fd_b, idle_ms, id)` dups both fds (Bun keeps owning its
//!   own and closes them after the record; a dup pins the socket, see splice.zig for why) and queues
//!   the pair for the ring thread, which an eventfd wakes.
//! - Receive: each direction keeps one IORING_OP_RECV with IORING_RECV_MULTISHOT on its source,
//!   buffers selected by the kernel from one shared ring (IORING_REGISTER_PBUF_RING). Each completion
//!   names its buffer; the buffer joins the direction's list of received, unsent buffers.
//! - Send, in order: at most one send per direction is in flight; it carries everything the list
//!   holds (SENDMSG with an iovec per buffer, SEND for one). A send completes with what the socket
//!   took; fully sent buffers go back to the pool, the rest waits for the next send. (Linked SQEs
//!   would not do: a short send does not move the rest of the chain's bytes up.)
//! - Buffers: a pool of `buf_count` buffers of BUF_SIZE bytes (address space only, MAP_NORESERVE);
//!   only a small part of it is in the kernel's ring at any time (`ring_target`, refilled after each
//!   batch of completions from a LIFO free stack), so the same few buffers cycle and the process's RSS
//!   stays at what traffic actually holds. An empty ring ends multishot receives with ENOBUFS: the
//!   target doubles, the directions wait on the starved list and are re-armed once buffers are back.
//!   The target halves again on a tick whose low-water mark shows it was more than needed; it never
//!   exceeds RING_MAX, so a burst of many small messages waits a batch or two for buffers rather than
//!   touching thousands of them. A tick on which no buffer was consumed gives the pages of every
//!   buffer not held back to the kernel (MADV_DONTNEED, coalesced runs): idle pairs cost no buffer
//!   memory, whatever the last burst touched.
//! - Per pair the engine keeps its Pair (184 bytes of malloc) and the 2 dups; the iovecs of a
//!   gathering send live in a scratch slot per submission queue entry (the kernel copies them when
//!   the entry is submitted: IORING_FEAT_SUBMIT_STABLE).
//! - Backpressure: a multishot receive is armed only while its direction holds fewer than LOW
//!   buffers, and on kernels that can (6.17: the receive's byte cap in sqe->optlen) it is capped at
//!   the bytes of HIGH buffers less those held: it ends by itself there, and is re-armed once sends
//!   have brought the list below LOW again. A kernel without the cap gets a cancel instead when the
//!   list reaches HIGH, after which the direction is throttled: it re-arms one-shot receives (one
//!   buffer each) while below the limit, until a send empties the list; what the multishot took
//!   between the last batch and the cancel comes on top (measured by the tests). Either way the rest
//!   stays in TCP, whose window then stops the writer. When the pool runs low (below a quarter free)
//!   the limit is 1 buffer, so many stalled readers cannot starve every other pair.
//! - Half-close: a receive of 0 bytes (FIN) becomes shutdown(SHUT_WR) on the destination once its
//!   list is sent. Both directions shut: the pair completes `done`.
//! - Reset: ECONNRESET/EPIPE on either socket sets SO_LINGER 0 on both (their last close, the dups
//!   then Bun's fds, sends RST) and completes the pair a_reset/b_reset. As in splice.zig an EOF is
//!   checked for a reset whose error Bun already took (SO_ERROR, then TCP_CLOSE).
//! - Idle timeout: a tick every TICK_MS sweeps the pairs; no byte moved for idle_ms completes one.
//! - Streams (relay auto, streamsToSplice): a pair one of whose directions has delivered
//!   STREAM_MIN bytes with nothing delivered the other way since is handed to the splice engine,
//!   which moves bulk without copying it through user memory (bench/results/2026-12-04-uring-streams.md).
//!   Its receives are cancelled and re-armed no more; once every held buffer is sent and nothing is
//!   in flight, its own fds go to splice.adopt with the byte counts so far, and the pair leaves
//!   this engine without a record (splice's record counts all of it). A FIN or error seen meanwhile
//!   keeps the pair here (it is ending anyway); so does a refusal. Request/response never hands over:
//!   each answer starts the count again.
//! - Completion: operations still in flight are cancelled (by fd); once the last of them has
//!   reported, the dups are closed and the record {id, bytes a->b, b->a, reason, errno} is queued
//!   (completion.zig) for JS to drain by polling. Stopping the engine completes every live pair
//!   with `shutdown`.
//! - The ring is made by its thread (IORING_SETUP_SINGLE_ISSUER | DEFER_TASKRUN: completions are
//!   processed only when that thread enters the kernel to wait for them, not by interrupting it),
//!   falling back to plainer setups on kernels that refuse those flags.
const std = @import("std");
const linux = std.os.linux;
const IoUring = linux.IoUring;
const sys = @import("sys.zig");
const completion = @import("completion.zig");
const accept_mod = @import("uring_accept.zig");
pub const Event = accept_mod.Event;
const Command = accept_mod.Command;
pub const Reason = completion.Reason;
pub const Record = completion.Record;
const Lock = sys.Lock;
const closeFd = sys.closeFd;
const nowMs = sys.nowMs;
const sockError = sys.sockError;
const tcpState = sys.tcpState;
const setLingerZero = sys.setLingerZero;
const TCP_CLOSE = sys.TCP_CLOSE;

/// Bytes per pooled buffer: HAProxy's default buffer size; a bulk stream moves up to MAX_IOV of
/// them per send.
pub const BUF_SIZE: u32 = 16 * 1024;
/// Buffers in the pool (the most a buffer ring may hold): 512 MiB of address space, resident only
/// where written.
pub const BUF_COUNT: u32 = 32768;
/// A direction that has delivered this many bytes with none delivered the other way is a stream:
/// handed to splice where that is on (module comment, "Streams"). As splice's batching threshold.
pub const STREAM_MIN: u64 = 1 << 20;
/// Buffers a direction may hold (received, not sent yet) before its receive is cancelled.
pub const HIGH: u32 = 16;
/// A multishot receive is (re-)armed only below this many held buffers.
const LOW: u32 = 4;
const MAX_IOV = HIGH;
/// The least number of buffers kept in the kernel's ring.
const RING_MIN: u32 = 64;
const RING_MAX: u32 = 512;
const TICK_MS = 100;
const SQ_ENTRIES: u16 = 1024;
const CQ_ENTRIES: u32 = 8192;
const GROUP: u16 = 0;
const NONE: u16 = 0xffff;
const DIRTY: u8 = 1;
const HELD: u8 = 2;
/// Needed of the kernel: poll-driven socket operations (5.7), completions never dropped (5.5),
/// submissions copied when taken (5.7; the sendmsg scratch relies on it).
const FEATURES = linux.IORING_FEAT_FAST_POLL | linux.IORING_FEAT_NODROP | linux.IORING_FEAT_SUBMIT_STABLE;
const MSG_NOSIGNAL: u32 = linux.MSG.NOSIGNAL;

/// What a completion's user_data names: a pair's pointer (8-byte aligned) with the operation in its
/// low bits, or one of the engine's own (below 8).
/// `accept` names a Listener instead of a pair.
const Op = enum(u3) { recv_ab, recv_ba, send_ab, send_ba, cancel, connect, link_timeout, accept };
const TAG_WAKE: u64 = 1;
const TAG_TICK: u64 = 2;
/// A completion nobody waits for (the cancel of a listener's accept).
const TAG_IGNORE: u64 = 3;

const Which = enum { ab, ba };

const Dir = struct {
    which: Which,
    src: i32,
    dst: i32,
    /// Received buffers not sent yet, oldest first (linked through Engine.buf_next), how many, and
    /// how many bytes of the head one are sent already.
    head: u16 = NONE,
    tail: u16 = NONE,
    held: u32 = 0,
    head_off: u32 = 0,
    /// Bytes delivered to dst.
    total: u64 = 0,
    /// A receive is in flight on src (until its final completion).
    armed: bool = false,
    /// A cancel of that receive is on its way.
    cancelling: bool = false,
    /// Hit HIGH: one-shot receives only, until a send empties the list.
    throttled: bool = false,
    sending: bool = false,
    eof: bool = false,
    shut: bool = false,
    /// On the engine's starved list (its receive ended with ENOBUFS; waits for buffers).
    starved: bool = false,
    starved_prev: ?*Dir = null,
    starved_next: ?*Dir = null,

    fn recvOp(d: *const Dir) Op {
        return if (d.which == .ab) .recv_ab else .recv_ba;
    }
    fn sendOp(d: *const Dir) Op {
        return if (d.which == .ab) .send_ab else .send_ba;
    }
};

const Pair = struct {
    id: u64,
    fa: i32,
    fb: i32,
    ab: Dir,
    ba: Dir,
    idle_ms: i64,
    last_ms: i64,
    done: bool = false,
    reason: Reason = .done,
    err: u32 = 0,
    /// Operations submitted whose final completion has not come yet; the pair is freed at 0 once done.
    inflight: u32 = 0,
    prev: ?*Pair = null,
    next: ?*Pair = null,
    /// The incoming list (add() to the ring thread).
    link: ?*Pair = null,
    /// Both sockets are there and the relay runs (a natively accepted pair: once connected).
    relaying: bool = false,
    /// JS waits for this pair's record (handed over, or natively accepted and asked to dial).
    owes: bool = true,
    /// An IORING_OP_CONNECT of fb is in flight.
    connecting: bool = false,
    /// Natively accepted: the token JS answers with (0: handed over by add()).
    token: u64 = 0,
    /// The dial being made (its address and timeout), until the connect completes.
    dial: ?*Command = null,
    /// Bytes delivered in one direction (`run_ab`: a->b) since the other last delivered any.
    run: u64 = 0,
    run_ab: bool = false,
    /// Going to the splice engine: receives are not re-armed (module comment, "Streams").
    handing_off: bool = false,

    fn other(p: *Pair, d: *Dir) *Dir {
        return if (d == &p.ab) &p.ba else &p.ab;
    }
    fn userData(p: *Pair, op: Op) u64 {
        return @intFromPtr(p) | @intFromEnum(op);
    }
};

pub const Options = struct {
    /// Buffers in the pool (power of two, at most 32768); tests shrink it to run out.
    buf_count: u32 = BUF_COUNT,
    /// Cap multishot receives in bytes where the kernel can (null: as probed); tests turn it off to
    /// exercise the cancel.
    recv_cap: ?bool = null,
    /// Where streams go once streamsToSplice(true): the splice engine's adopt (lib.zig). It owns the
    /// fds from a 0 return; on -errno they stay here.
    handoff: ?*const HandoffFn = null,
};

pub const HandoffFn = fn (fd_a: i32, fd_b: i32, idle_ms: i64, id: u64, a_to_b: u64, b_to_a: u64) c_int;

pub const Engine = struct {
    gpa: std.mem.Allocator,
    thread: ?std.Thread = null,
    /// 0 starting, 1 running, 2 failed (start_err says why).
    state: u32 = 0,
    start_err: c_int = 0,
    evfd: i32 = -1,
    lock: Lock = .{},
    stopping: bool = false,
    incoming: ?*Pair = null,
    queue: completion.Queue,
    /// Native accept: events for JS (with their bell) and JS's commands (newest first).
    events: accept_mod.Events,
    commands: ?*Command = null,

    // ---- the ring thread's own -------------------------------------------------------------
    ring: IoUring = undefined,
    live: ?*Pair = null,
    /// Stopping: newly accepted connections are closed at once.
    halting: bool = false,
    now: i64 = 0,
    tick_ts: linux.kernel_timespec = .{ .sec = 0, .nsec = TICK_MS * std.time.ns_per_ms },
    buf_count: u32,
    bufs: [*]u8 = undefined,
    br: *align(std.heap.page_size_min) linux.io_uring_buf_ring = undefined,
    buf_next: []u16 = &.{},
    buf_len: []u32 = &.{},
    free: []u16 = &.{},
    free_len: u32 = 0,
    in_ring: u32 = 0,
    ring_target: u32 = RING_MIN,
    /// The fewest buffers found in the ring before a refill since the last tick.
    ring_low: u32 = std.math.maxInt(u32),
    starved_head: ?*Dir = null,
    /// Native accept: the listening sockets, and the accepted pairs by token (for their life).
    listeners: ?*Listener = null,
    tokens: std.AutoHashMapUnmanaged(u64, *Pair) = .empty,
    next_token: u64 = 1,
    /// Multishot receives carry a byte cap (probe: recv_cap_supported).
    recv_cap: bool = false,
    /// Per buffer: DIRTY (written since its pages were last given back), HELD (in a direction's list).
    buf_state: []u8 = &.{},
    dirty: u32 = 0,
    /// Buffers the kernel filled since the last tick.
    consumed: u32 = 0,
    /// A gathering send's iovecs and msghdr, one slot per submission queue entry.
    scratch_iov: [][MAX_IOV]std.posix.iovec_const = &.{},
    scratch_msg: []linux.msghdr_const = &.{},

    // ---- read by other threads (tests, diagnostics) --------------------------------------------
    /// Buffers held by directions (received, not sent) now, and the most any one direction held.
    held_now: i32 = 0,
    peak_dir_held: u32 = 0,
    enobufs: u64 = 0,
    ring_setup_flags: u32 = 0,
    /// Runs of buffers whose pages were given back (madvise calls made).
    reclaims: u64 = 0,
    /// Streams go to `handoff` (set by another thread: atomic), and how many went.
    handoff: ?*const HandoffFn = null,
    streams_on: bool = false,
    handed_off: u64 = 0,

    pub fn create(gpa: std.mem.Allocator, opts: Options) !*Engine {
        if (opts.buf_count == 0 or opts.buf_count > 32768 or !std.math.isPowerOfTwo(opts.buf_count)) return error.BadOptions;
        const refused = probe();
        if (refused < 0) {
            last_error = refused;
            return error.Refused;
        }
        const self = try gpa.create(Engine);
        errdefer gpa.destroy(self);
        var events = accept_mod.Events.init(gpa) catch return error.EventFd;
        errdefer events.deinit();
        self.* = .{ .gpa = gpa, .queue = completion.Queue.init(gpa), .events = events, .buf_count = opts.buf_count, .recv_cap = opts.recv_cap orelse recv_cap_supported, .handoff = opts.handoff };
        const rc = linux.eventfd(0, linux.EFD.CLOEXEC | linux.EFD.NONBLOCK);
        if (linux.errno(rc) != .SUCCESS) return error.EventFd;
        self.evfd = @intCast(rc);
        errdefer closeFd(self.evfd);
        self.thread = try std.Thread.spawn(.{}, run, .{self});
        while (@atomicLoad(u32, &self.state, .acquire) == 0) sys.sleepMs(1);
        if (@atomicLoad(u32, &self.state, .acquire) == 2) {
            self.thread.?.join();
            last_error = self.start_err;
            return error.Refused;
        }
        return self;
    }

    /// Why the last create() was refused (-errno).
    pub var last_error: c_int = 0;

    /// Stop the thread: live pairs complete with `shutdown`; their records stay in the queue.
    pub fn stop(self: *Engine) void {
        self.lock.lock();
        self.stopping = true;
        self.lock.unlock();
        self.wake();
        if (self.thread) |t| t.join();
        self.thread = null;
    }

    pub fn destroy(self: *Engine) void {
        self.stop();
        closeFd(self.evfd);
        self.queue.deinit();
        var c = self.commands;
        while (c) |cmd| {
            c = cmd.next;
            if (cmd.kind == .listen) closeFd(cmd.fd);
            self.gpa.destroy(cmd);
        }
        self.events.deinit();
        self.gpa.destroy(self);
    }

    fn wake(self: *Engine) void {
        const one: u64 = 1;
        _ = linux.write(self.evfd, @ptrCast(&one), 8);
    }

    /// Hand over a connected pair. 0, or -errno (nothing was taken over then).
    pub fn add(self: *Engine, fd_a: i32, fd_b: i32, idle_ms: i64, id: u64) c_int {
        const a = sys.dupNonblock(fd_a);
        if (a < 0) return a;
        const b = sys.dupNonblock(fd_b);
        if (b < 0) {
            closeFd(a);
            return b;
        }
        const p = self.gpa.create(Pair) catch {
            closeFd(a);
            closeFd(b);
            return sys.errnoInt(.NOMEM);
        };
        p.* = .{
            .id = id,
            .fa = a,
            .fb = b,
            .ab = .{ .which = .ab, .src = a, .dst = b },
            .ba = .{ .which = .ba, .src = b, .dst = a },
            .idle_ms = idle_ms,
            .last_ms = nowMs(),
        };
        self.lock.lock();
        if (self.stopping) {
            self.lock.unlock();
            closeFd(a);
            closeFd(b);
            self.gpa.destroy(p);
            return sys.errnoInt(.SHUTDOWN);
        }
        self.queue.begin();
        p.link = self.incoming;
        self.incoming = p;
        self.lock.unlock();
        self.wake();
        return 0;
    }

    pub fn poll(self: *Engine, out: []Record) usize {
        return self.queue.poll(out);
    }

    pub fn activeCount(self: *Engine) i32 {
        return self.queue.activeCount();
    }

    /// Hand streams to the splice engine from now on (relay auto), or not. false: no handoff was given.
    pub fn streamsToSplice(self: *Engine, on: bool) bool {
        if (self.handoff == null) return false;
        @atomicStore(bool, &self.streams_on, on, .release);
        return true;
    }

    /// Pairs handed to the splice engine so far.
    pub fn handedOff(self: *Engine) u64 {
        return @atomicLoad(u64, &self.handed_off, .monotonic);
    }

    /// Buffers received and not yet sent, over all directions.
    pub fn heldBuffers(self: *Engine) i32 {
        return @atomicLoad(i32, &self.held_now, .monotonic);
    }

    /// The most buffers one direction has held at once.
    pub fn peakDirHeld(self: *Engine) u32 {
        return @atomicLoad(u32, &self.peak_dir_held, .monotonic);
    }

    /// Buffers written since their pages were last given back.
    pub fn dirtyBuffers(self: *Engine) u32 {
        return @atomicLoad(u32, &self.dirty, .monotonic);
    }

    /// Receives that ended because the kernel's ring was empty.
    pub fn enobufsCount(self: *Engine) u64 {
        return @atomicLoad(u64, &self.enobufs, .monotonic);
    }

    // ---- the ring thread ---------------------------------------------------------------------

    fn run(self: *Engine) void {
        if (self.setup()) |_| {
            @atomicStore(u32, &self.state, 1, .release);
        } else |e| {
            self.start_err = switch (e) {
                error.PermissionDenied => sys.errnoInt(.PERM),
                error.SystemOutdated => sys.errnoInt(.NOSYS),
                error.OutOfMemory, error.SystemResources => sys.errnoInt(.NOMEM),
                error.ProcessFdQuotaExceeded => sys.errnoInt(.MFILE),
                error.SystemFdQuotaExceeded => sys.errnoInt(.NFILE),
                error.Unsupported => sys.errnoInt(.OPNOTSUPP),
                else => sys.errnoInt(.INVAL),
            };
            @atomicStore(u32, &self.state, 2, .release);
            return;
        }
        self.loop();
        self.teardown();
    }

    fn setup(self: *Engine) !void {
        self.ring = try initRing();
        errdefer self.ring.deinit();
        self.ring_setup_flags = self.ring.flags;
        if (self.ring.features & FEATURES != FEATURES) return error.Unsupported;
        const n = self.buf_count;
        const mrc = linux.mmap(null, @as(usize, n) * BUF_SIZE, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .NORESERVE = true }, -1, 0);
        if (linux.errno(mrc) != .SUCCESS) return error.OutOfMemory;
        self.bufs = @ptrFromInt(mrc);
        errdefer _ = linux.munmap(self.bufs, @as(usize, n) * BUF_SIZE);
        self.buf_next = try self.gpa.alloc(u16, n);
        errdefer self.gpa.free(self.buf_next);
        self.buf_len = try self.gpa.alloc(u32, n);
        errdefer self.gpa.free(self.buf_len);
        self.free = try self.gpa.alloc(u16, n);
        errdefer self.gpa.free(self.free);
        self.buf_state = try self.gpa.alloc(u8, n);
        errdefer self.gpa.free(self.buf_state);
        @memset(self.buf_state, 0);
        self.scratch_iov = try self.gpa.alloc([MAX_IOV]std.posix.iovec_const, self.ring.sq.sqes.len);
        errdefer self.gpa.free(self.scratch_iov);
        self.scratch_msg = try self.gpa.alloc(linux.msghdr_const, self.ring.sq.sqes.len);
        errdefer self.gpa.free(self.scratch_msg);
        // Pushed so that bid 0 is on top: the lowest buffers are used first and reused most.
        for (0..n) |i| self.free[i] = @intCast(n - 1 - i);
        self.free_len = n;
        self.br = try IoUring.setup_buf_ring(self.ring.fd, @intCast(n), GROUP, .{ .inc = false });
        IoUring.buf_ring_init(self.br);
        self.refill();
        self.armWake();
        self.armTick();
        _ = try self.ring.submit();
    }

    fn teardown(self: *Engine) void {
        IoUring.free_buf_ring(self.ring.fd, self.br, self.buf_count, GROUP);
        self.ring.deinit();
        _ = linux.munmap(self.bufs, @as(usize, self.buf_count) * BUF_SIZE);
        self.gpa.free(self.buf_next);
        self.gpa.free(self.buf_len);
        self.gpa.free(self.free);
        self.gpa.free(self.buf_state);
        self.gpa.free(self.scratch_iov);
        self.gpa.free(self.scratch_msg);
        self.tokens.deinit(self.gpa);
    }

    fn loop(self: *Engine) void {
        var cqes: [256]linux.io_uring_cqe = undefined;
        var stopping = false;
        while (true) {
            if (!stopping) {
                self.lock.lock();
                stopping = self.stopping;
                self.lock.unlock();
                if (stopping) {
                    self.halting = true;
                    // add() refuses from now on (same lock): this takes the last of the incoming.
                    self.takeIncoming();
                    var it = self.live;
                    while (it) |p| {
                        it = p.next;
                        self.complete(p, .shutdown, 0);
                        self.settle(p);
                    }
                    self.closeListeners();
                }
            }
            if (stopping and self.live == null) return;
            _ = self.ring.submit_and_wait(1) catch |e| switch (e) {
                // Interrupted, or the kernel wants completions reaped first: reap, then enter again.
                error.SignalInterrupt, error.SystemResources, error.CompletionQueueOvercommitted => {},
                else => sys.sleepMs(1),
            };
            self.now = nowMs();
            while (true) {
                const n = self.ring.copy_cqes(&cqes, 0) catch 0;
                for (cqes[0..n]) |c| self.handle(c);
                if (n < cqes.len) break;
            }
            self.refill();
        }
    }

    fn handle(self: *Engine, c: linux.io_uring_cqe) void {
        if (c.user_data < 8) {
            switch (c.user_data) {
                TAG_WAKE => {
                    var v: u64 = 0;
                    _ = linux.read(self.evfd, @ptrCast(&v), 8);
                    if (c.flags & linux.IORING_CQE_F_MORE == 0) self.armWake();
                    self.takeIncoming();
                    self.takeCommands();
                },
                TAG_TICK => {
                    self.armTick();
                    self.tick();
                },
                else => {},
            }
            return;
        }
        const op: Op = @enumFromInt(@as(u3, @truncate(c.user_data)));
        if (op == .accept) return self.onAccept(@ptrFromInt(c.user_data & ~@as(u64, 7)), c);
        const p: *Pair = @ptrFromInt(c.user_data & ~@as(u64, 7));
        switch (op) {
            .recv_ab => self.onRecv(p, &p.ab, c),
            .recv_ba => self.onRecv(p, &p.ba, c),
            .send_ab => self.onSend(p, &p.ab, c),
            .send_ba => self.onSend(p, &p.ba, c),
            .cancel, .link_timeout => p.inflight -= 1,
            .connect => self.onConnect(p, c),
            .accept => unreachable,
        }
        self.settle(p);
    }

    fn takeIncoming(self: *Engine) void {
        self.lock.lock();
        var list = self.incoming;
        self.incoming = null;
        self.lock.unlock();
        while (list) |p| {
            list = p.link;
            p.link = null;
            p.relaying = true;
            p.last_ms = self.now;
            p.next = self.live;
            if (self.live) |h| h.prev = p;
            self.live = p;
            self.maybeArm(p, &p.ab);
            self.maybeArm(p, &p.ba);
        }
    }

    fn onRecv(self: *Engine, p: *Pair, d: *Dir, c: linux.io_uring_cqe) void {
        if (c.flags & linux.IORING_CQE_F_MORE == 0) {
            d.armed = false;
            d.cancelling = false;
            p.inflight -= 1;
        }
        var bid: u16 = NONE;
        if (c.flags & linux.IORING_CQE_F_BUFFER != 0) {
            self.in_ring -= 1;
            bid = @intCast(c.flags >> linux.IORING_CQE_BUFFER_SHIFT);
            self.consumed += 1;
            if (self.buf_state[bid] & DIRTY == 0 and c.res > 0) {
                self.buf_state[bid] |= DIRTY;
                self.dirty += 1;
            }
            if (c.res <= 0 or p.done) {
                self.freeBuf(bid);
                bid = NONE;
            }
        }
        if (p.done) return;
        if (c.res > 0 and bid != NONE) {
            self.hold(d, bid, @intCast(c.res));
            p.last_ms = self.now;
            if (!d.sending) self.send(p, d);
            if (d.held >= self.limit() and d.armed and !d.cancelling) {
                // The destination is not keeping up: stop taking more from the source.
                d.throttled = true;
                d.cancelling = true;
                const sqe = self.getSqe();
                sqe.prep_cancel(p.userData(d.recvOp()), 0);
                sqe.user_data = p.userData(.cancel);
                p.inflight += 1;
            }
        } else if (c.res == 0) {
            self.sourceEnded(p, d);
        } else if (c.res < 0) {
            switch (@as(linux.E, @enumFromInt(-c.res))) {
                .NOBUFS => {
                    _ = @atomicRmw(u64, &self.enobufs, .Add, 1, .monotonic);
                    self.ring_target = @min(self.ring_target * 2, RING_MAX, self.buf_count);
                },
                .CANCELED, .INTR, .AGAIN => {},
                .CONNRESET, .PIPE => self.complete(p, if (d.which == .ab) .a_reset else .b_reset, 0),
                else => |e| self.complete(p, if (d.which == .ab) .a_error else .b_error, @intFromEnum(e)),
            }
        }
        if (!p.done and !d.armed) self.maybeArm(p, d);
    }

    /// A receive of 0 bytes: the source's FIN, or a reset whose error someone already took.
    fn sourceEnded(self: *Engine, p: *Pair, d: *Dir) void {
        const se = sockError(d.src);
        if (se != 0 and se != @intFromEnum(linux.E.CONNRESET) and se != @intFromEnum(linux.E.PIPE)) {
            return self.complete(p, if (d.which == .ab) .a_error else .b_error, se);
        }
        // A FIN leaves the source in CLOSE_WAIT while we have not shut its write side; a reset
        // moves it to CLOSE (splice.zig, moveDir).
        if (se != 0 or (!p.other(d).shut and tcpState(d.src) == TCP_CLOSE)) {
            return self.complete(p, if (d.which == .ab) .a_reset else .b_reset, 0);
        }
        d.eof = true;
        if (p.handing_off) {
            // Ending anyway: finish here rather than hand splice a half-closed pair.
            p.handing_off = false;
            self.maybeArm(p, p.other(d));
        }
        if (!d.sending and d.held == 0) self.shutDst(p, d);
    }

    fn onSend(self: *Engine, p: *Pair, d: *Dir, c: linux.io_uring_cqe) void {
        d.sending = false;
        p.inflight -= 1;
        if (p.done) return;
        if (c.res >= 0) {
            const n: u32 = @intCast(c.res);
            self.consume(d, n);
            d.total += n;
            p.last_ms = self.now;
            const ab = d.which == .ab;
            if (p.run_ab != ab) {
                p.run_ab = ab;
                p.run = 0;
            }
            p.run += n;
            if (p.run >= STREAM_MIN and !p.handing_off and @atomicLoad(bool, &self.streams_on, .acquire)) self.beginHandoff(p);
        } else switch (@as(linux.E, @enumFromInt(-c.res))) {
            .INTR, .AGAIN => {},
            .CONNRESET, .PIPE => return self.complete(p, if (d.which == .ab) .b_reset else .a_reset, 0),
            else => |e| return self.complete(p, if (d.which == .ab) .b_error else .a_error, @intFromEnum(e)),
        }
        if (d.held > 0) {
            self.send(p, d);
        } else {
            d.throttled = false;
            if (d.eof and !d.shut) return self.shutDst(p, d);
        }
        if (!d.armed) self.maybeArm(p, d);
    }

    fn shutDst(self: *Engine, p: *Pair, d: *Dir) void {
        d.shut = true;
        _ = linux.shutdown(d.dst, linux.SHUT.WR);
        if (p.other(d).shut) self.complete(p, .done, 0);
    }

    /// Buffers a direction may hold: HIGH, or 1 while the pool is low (see the module comment).
    fn limit(self: *Engine) u32 {
        return if (self.free_len + self.in_ring < self.buf_count / 4) 1 else HIGH;
    }

    /// Arm `d`'s receive if it may take more: multishot normally, one-shot while throttled; a
    /// direction with no buffer to receive into waits on the starved list.
    fn maybeArm(self: *Engine, p: *Pair, d: *Dir) void {
        if (p.done or !p.relaying or p.handing_off or d.eof or d.armed or d.starved) return;
        if (d.throttled) {
            if (d.held >= self.limit()) return;
        } else if (d.held >= LOW) return;
        if (self.in_ring == 0) return self.starve(d);
        const sqe = self.getSqe();
        sqe.prep_rw(.RECV, d.src, 0, 0, 0);
        sqe.flags |= linux.IOSQE_BUFFER_SELECT;
        sqe.buf_index = GROUP;
        if (!d.throttled) {
            sqe.ioprio |= linux.IORING_RECV_MULTISHOT;
            // sqe->optlen (the union splice_fd_in is in): the receive ends after this many bytes.
            if (self.recv_cap) sqe.splice_fd_in = @intCast((HIGH - d.held) * BUF_SIZE);
        }
        sqe.user_data = p.userData(d.recvOp());
        d.armed = true;
        p.inflight += 1;
    }

    /// One send of everything `d` holds (up to MAX_IOV buffers), in order.
    fn send(self: *Engine, p: *Pair, d: *Dir) void {
        if (d.head == NONE) return;
        const sqe = self.getSqe();
        if (self.buf_next[d.head] == NONE) {
            sqe.prep_send(d.dst, (self.bufPtr(d.head) + d.head_off)[0 .. self.buf_len[d.head] - d.head_off], MSG_NOSIGNAL);
        } else {
            // The entry's own scratch slot: the kernel copies the msghdr and iovecs when it takes
            // the entry, before the slot can be handed out again.
            const slot = (@intFromPtr(sqe) - @intFromPtr(self.ring.sq.sqes.ptr)) / @sizeOf(linux.io_uring_sqe);
            const iov = &self.scratch_iov[slot];
            var n: usize = 0;
            var bid = d.head;
            var off = d.head_off;
            while (bid != NONE and n < MAX_IOV) : (n += 1) {
                iov[n] = .{ .base = self.bufPtr(bid) + off, .len = self.buf_len[bid] - off };
                off = 0;
                bid = self.buf_next[bid];
            }
            self.scratch_msg[slot] = .{ .name = null, .namelen = 0, .iov = iov, .iovlen = n, .control = null, .controllen = 0, .flags = 0 };
            sqe.prep_sendmsg(d.dst, &self.scratch_msg[slot], MSG_NOSIGNAL);
        }
        sqe.user_data = p.userData(d.sendOp());
        d.sending = true;
        p.inflight += 1;
    }

    fn complete(self: *Engine, p: *Pair, reason: Reason, err: u32) void {
        if (p.done) return;
        p.done = true;
        p.reason = reason;
        p.err = err;
        if (reason == .a_reset or reason == .b_reset) {
            setLingerZero(p.fa);
            setLingerZero(p.fb);
        }
        self.unstarve(&p.ab);
        self.unstarve(&p.ba);
        // Whatever is in flight holds a reference to its socket (and may hold a buffer): cancel it
        // and wait for its completion before the dups are closed and the record goes out.
        if (p.ab.armed or p.ba.sending) self.cancelFd(p, p.fa);
        if (p.ba.armed or p.ab.sending or p.connecting) self.cancelFd(p, p.fb);
    }

    fn cancelFd(self: *Engine, p: *Pair, fd: i32) void {
        const sqe = self.getSqe();
        sqe.prep_cancel_fd(fd, linux.IORING_ASYNC_CANCEL_ALL);
        sqe.user_data = p.userData(.cancel);
        p.inflight += 1;
    }

    /// A stream (module comment, "Streams"): stop receiving; settle() hands it over once quiet.
    fn beginHandoff(self: *Engine, p: *Pair) void {
        if (p.ab.eof or p.ba.eof) return;
        p.handing_off = true;
        for ([2]*Dir{ &p.ab, &p.ba }) |d| {
            self.unstarve(d);
            if (d.armed and !d.cancelling) {
                d.cancelling = true;
                const sqe = self.getSqe();
                sqe.prep_cancel(p.userData(d.recvOp()), 0);
                sqe.user_data = p.userData(.cancel);
                p.inflight += 1;
            }
        }
    }

    /// A pair handing off with nothing in flight and nothing held: its fds and counts to splice.
    fn handOff(self: *Engine, p: *Pair) void {
        const rc = self.handoff.?(p.fa, p.fb, p.idle_ms, p.id, p.ab.total, p.ba.total);
        if (rc < 0) {
            // Refused (splice stopping, out of memory): relay on here; the next STREAM_MIN tries again.
            p.handing_off = false;
            p.run = 0;
            self.maybeArm(p, &p.ab);
            self.maybeArm(p, &p.ba);
            return;
        }
        if (p.prev) |pv| pv.next = p.next else self.live = p.next;
        if (p.next) |nx| nx.prev = p.prev;
        if (p.token != 0) _ = self.tokens.remove(p.token);
        // After splice's begin (in adopt): the engines' active counts together never miss the pair.
        self.queue.forget();
        _ = @atomicRmw(u64, &self.handed_off, .Add, 1, .monotonic);
        self.gpa.destroy(p);
    }

    /// A completed pair with nothing in flight: close its dups, queue its record, free it. A pair
    /// handing off goes to splice instead once it is quiet.
    fn settle(self: *Engine, p: *Pair) void {
        if (!p.done and p.handing_off and p.inflight == 0 and p.ab.held == 0 and p.ba.held == 0) return self.handOff(p);
        if (!p.done or p.inflight > 0) return;
        for ([2]*Dir{ &p.ab, &p.ba }) |d| {
            while (d.head != NONE) {
                const bid = d.head;
                d.head = self.buf_next[bid];
                self.freeBuf(bid);
            }
            _ = @atomicRmw(i32, &self.held_now, .Sub, @intCast(d.held), .monotonic);
            d.held = 0;
        }
        closeFd(p.fa);
        closeFd(p.fb);
        if (p.prev) |pv| pv.next = p.next else self.live = p.next;
        if (p.next) |nx| nx.prev = p.prev;
        if (p.token != 0) _ = self.tokens.remove(p.token);
        if (p.dial) |d| self.gpa.destroy(d);
        if (p.owes) self.queue.push(.{ .id = p.id, .a_to_b = p.ab.total, .b_to_a = p.ba.total, .reason = @intFromEnum(p.reason), .err = p.err });
        self.gpa.destroy(p);
    }

    fn tick(self: *Engine) void {
        // The ring never ran below half its target: it can be kept smaller.
        if (self.ring_low != std.math.maxInt(u32) and self.ring_low > self.ring_target / 2) self.ring_target = @max(self.ring_target / 2, @min(RING_MIN, self.buf_count));
        self.ring_low = std.math.maxInt(u32);
        if (self.consumed == 0 and self.dirty > 0) self.reclaim();
        self.consumed = 0;
        var l = self.listeners;
        while (l) |ls| : (l = ls.next) {
            if (!ls.armed and !ls.closing) self.armAccept(ls);
        }
        var it = self.live;
        while (it) |p| {
            it = p.next;
            if (p.idle_ms > 0 and self.now - p.last_ms >= p.idle_ms) {
                self.complete(p, .idle_timeout, 0);
                self.settle(p);
            }
        }
    }

    fn armWake(self: *Engine) void {
        const sqe = self.getSqe();
        sqe.prep_poll_add(self.evfd, linux.POLL.IN);
        sqe.len |= linux.IORING_POLL_ADD_MULTI;
        sqe.user_data = TAG_WAKE;
    }

    fn armTick(self: *Engine) void {
        const sqe = self.getSqe();
        sqe.prep_timeout(&self.tick_ts, 0, 0);
        sqe.user_data = TAG_TICK;
    }

    fn getSqe(self: *Engine) *linux.io_uring_sqe {
        while (true) {
            return self.ring.get_sqe() catch {
                // The submission queue is full: hand it to the kernel and take a slot again.
                _ = self.ring.submit() catch {
                    _ = linux.sched_yield();
                };
                continue;
            };
        }
    }

    // ---- native accept: the JS thread's calls (commands for the ring thread) -------------------

    /// The bell JS reads: a byte arrives when events wait after it drained them all.
    pub fn bellFd(self: *Engine) i32 {
        return self.events.bell_read;
    }

    pub fn pollEvents(self: *Engine, out: []Event) usize {
        return self.events.poll(out);
    }

    /// Accept on listening socket `fd` from now on, as listener `id` (the engine works on its own
    /// dup; the caller keeps its fd). TCP_NODELAY and SO_KEEPALIVE are set on the listening socket:
    /// accepted sockets inherit both (tcp_create_openreq_child copies them), which saves two
    /// setsockopt calls per connection. 0, or -errno.
    pub fn listen(self: *Engine, fd: i32, id: u32) c_int {
        const dup = sys.dupNonblock(fd);
        if (dup < 0) return dup;
        setIntOpt(dup, linux.IPPROTO.TCP, linux.TCP.NODELAY);
        setIntOpt(dup, linux.SOL.SOCKET, linux.SO.KEEPALIVE);
        return self.command(.{ .kind = .listen, .fd = dup, .listener = id });
    }

    /// Stop accepting as listener `id` (connections queued in the kernel stay there).
    pub fn unlisten(self: *Engine, id: u32) c_int {
        return self.command(.{ .kind = .unlisten, .listener = id });
    }

    /// JS's answer to an accepted connection: dial this address and relay; the pair's record (id
    /// `conn_id`) comes whatever happens, a failed connect included.
    pub fn connect(self: *Engine, dial: Command) c_int {
        return self.command(dial);
    }

    /// JS's other answer: close the client (FIN, or RST with `reset`). No record.
    pub fn refuse(self: *Engine, token: u64, reset: bool) c_int {
        return self.command(.{ .kind = .refuse, .token = token, .reset = reset });
    }

    /// Reset both sides of a natively accepted connection (the drain deadline); its record says `shutdown`.
    pub fn kill(self: *Engine, token: u64) c_int {
        return self.command(.{ .kind = .kill, .token = token });
    }

    fn command(self: *Engine, cmd: Command) c_int {
        const c = self.gpa.create(Command) catch {
            if (cmd.kind == .listen) closeFd(cmd.fd);
            return sys.errnoInt(.NOMEM);
        };
        c.* = cmd;
        self.lock.lock();
        if (self.stopping) {
            self.lock.unlock();
            if (cmd.kind == .listen) closeFd(cmd.fd);
            self.gpa.destroy(c);
            return sys.errnoInt(.SHUTDOWN);
        }
        // A dial owes a record from here on (as add() does), so activeCount never misses one.
        if (cmd.kind == .connect) self.queue.begin();
        c.next = self.commands;
        self.commands = c;
        self.lock.unlock();
        self.wake();
        return 0;
    }

    // ---- native accept: the ring thread ------------------------------------------------------

    fn takeCommands(self: *Engine) void {
        self.lock.lock();
        var list = self.commands;
        self.commands = null;
        self.lock.unlock();
        // Newest first: reverse, so a listen and its unlisten run in the order they were made.
        var ordered: ?*Command = null;
        while (list) |c| {
            list = c.next;
            c.next = ordered;
            ordered = c;
        }
        while (ordered) |c| {
            ordered = c.next;
            c.next = null;
            self.run_command(c);
        }
    }

    fn run_command(self: *Engine, c: *Command) void {
        switch (c.kind) {
            .listen => {
                const l = self.gpa.create(Listener) catch {
                    closeFd(c.fd);
                    return self.gpa.destroy(c);
                };
                l.* = .{ .id = c.listener, .fd = c.fd, .next = self.listeners };
                self.listeners = l;
                self.armAccept(l);
                self.gpa.destroy(c);
            },
            .unlisten => {
                var it = self.listeners;
                while (it) |l| : (it = l.next) {
                    if (l.id == c.listener and !l.closing) self.closeListener(l);
                }
                self.gpa.destroy(c);
            },
            .connect => self.startDial(c),
            .refuse, .kill => {
                defer self.gpa.destroy(c);
                const p = self.tokens.get(c.token) orelse return;
                if (c.kind == .refuse and p.owes) return; // dialling already: only kill cuts it
                if (c.kind == .kill or c.reset) {
                    setLingerZero(p.fa);
                    if (p.fb >= 0) setLingerZero(p.fb);
                }
                self.complete(p, .shutdown, 0);
                self.settle(p);
            },
        }
    }

    fn armAccept(self: *Engine, l: *Listener) void {
        const sqe = self.getSqe();
        sqe.prep_multishot_accept(l.fd, null, null, linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC);
        sqe.user_data = @intFromPtr(l) | @intFromEnum(Op.accept);
        l.armed = true;
    }

    fn closeListener(self: *Engine, l: *Listener) void {
        l.closing = true;
        if (!l.armed) return self.freeListener(l);
        const sqe = self.getSqe();
        sqe.prep_cancel(@intFromPtr(l) | @intFromEnum(Op.accept), 0);
        sqe.user_data = TAG_IGNORE;
    }

    fn freeListener(self: *Engine, l: *Listener) void {
        var at = &self.listeners;
        while (at.*) |x| : (at = &x.next) {
            if (x == l) {
                at.* = l.next;
                break;
            }
        }
        closeFd(l.fd);
        self.gpa.destroy(l);
    }

    /// Stopping: every listener's dup closes (the kernel cancels its accept with the ring).
    fn closeListeners(self: *Engine) void {
        while (self.listeners) |l| {
            self.listeners = l.next;
            closeFd(l.fd);
            self.gpa.destroy(l);
        }
    }

    fn onAccept(self: *Engine, l: *Listener, c: linux.io_uring_cqe) void {
        if (c.flags & linux.IORING_CQE_F_MORE == 0) l.armed = false;
        if (c.res >= 0) {
            self.accepted(l, c.res);
        } else switch (@as(linux.E, @enumFromInt(-c.res))) {
            // Out of fds or memory: the next tick arms it again (not at once: it would fail again).
            .CANCELED, .MFILE, .NFILE, .NOBUFS, .NOMEM => {},
            else => {},
        }
        if (l.armed) return;
        if (l.closing) return self.freeListener(l);
        if (c.res >= 0 or c.res == -@as(i32, @intFromEnum(linux.E.INTR))) self.armAccept(l);
    }

    /// A new client: a pair with only its client side, known to JS by a token, waiting for JS's
    /// answer (dial or refuse); nothing is read from it until the upstream is connected.
    fn accepted(self: *Engine, l: *Listener, fd: i32) void {
        if (self.halting) return closeFd(fd);
        const p = self.gpa.create(Pair) catch return closeFd(fd);
        const token = self.next_token;
        self.tokens.put(self.gpa, token, p) catch {
            self.gpa.destroy(p);
            return closeFd(fd);
        };
        self.next_token += 1;
        p.* = .{
            .id = 0,
            .fa = fd,
            .fb = -1,
            .ab = .{ .which = .ab, .src = fd, .dst = -1 },
            .ba = .{ .which = .ba, .src = -1, .dst = fd },
            .idle_ms = 0,
            .last_ms = self.now,
            .owes = false,
            .token = token,
        };
        p.next = self.live;
        if (self.live) |h| h.prev = p;
        self.live = p;
        var e: Event = .{ .key = token, .kind = @intFromEnum(accept_mod.EventKind.accepted), .arg = l.id, .fd = fd };
        accept_mod.peerOf(fd, &e);
        self.events.push(e);
    }

    fn startDial(self: *Engine, c: *Command) void {
        const p = self.tokens.get(c.token) orelse {
            // Gone already (stopping, or killed): the record JS waits for still comes.
            self.queue.push(.{ .id = c.conn_id, .a_to_b = 0, .b_to_a = 0, .reason = @intFromEnum(Reason.shutdown), .err = 0 });
            return self.gpa.destroy(c);
        };
        if (p.owes or p.done) {
            self.queue.push(.{ .id = c.conn_id, .a_to_b = 0, .b_to_a = 0, .reason = @intFromEnum(Reason.shutdown), .err = 0 });
            return self.gpa.destroy(c);
        }
        p.id = c.conn_id;
        p.idle_ms = c.idle_ms;
        p.owes = true;
        p.dial = c;
        const rc = linux.socket(c.family, linux.SOCK.STREAM | linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC, 0);
        if (linux.errno(rc) != .SUCCESS) {
            self.complete(p, .connect_failed, @intFromEnum(linux.errno(rc)));
            return self.settle(p);
        }
        const fd: i32 = @intCast(rc);
        if (c.family != linux.AF.UNIX) {
            setIntOpt(fd, linux.IPPROTO.TCP, linux.TCP.NODELAY);
            setIntOpt(fd, linux.SOL.SOCKET, linux.SO.KEEPALIVE);
        }
        p.fb = fd;
        p.ab.dst = fd;
        p.ba.src = fd;
        c.started_ns = sys.nowNs();
        const timed = c.timeout.sec != 0 or c.timeout.nsec != 0;
        // A linked pair must not be split by a submit in between: make room for both first.
        if (timed and self.ring.sq.sqes.len - self.ring.sq_ready() < 2) _ = self.ring.submit() catch 0;
        const sqe = self.getSqe();
        sqe.prep_connect(fd, c.sockaddr(), c.salen);
        sqe.user_data = p.userData(.connect);
        p.inflight += 1;
        p.connecting = true;
        if (timed) {
            sqe.flags |= linux.IOSQE_IO_LINK;
            const t = self.getSqe();
            t.prep_link_timeout(&c.timeout, 0);
            t.user_data = p.userData(.link_timeout);
            p.inflight += 1;
        }
    }

    fn onConnect(self: *Engine, p: *Pair, c: linux.io_uring_cqe) void {
        p.inflight -= 1;
        p.connecting = false;
        if (p.done) return;
        if (c.res < 0) {
            // The linked timeout cancels a connect it outlived.
            const e: linux.E = @enumFromInt(-c.res);
            if (e == .CANCELED or e == .TIME) return self.complete(p, .connect_timeout, 0);
            return self.complete(p, .connect_failed, @intFromEnum(e));
        }
        const d = p.dial.?;
        const us = (sys.nowNs() - d.started_ns) / std.time.ns_per_us;
        self.gpa.destroy(d);
        p.dial = null;
        p.relaying = true;
        p.last_ms = self.now;
        self.events.push(.{ .key = p.id, .kind = @intFromEnum(accept_mod.EventKind.connected), .arg = @intCast(@min(us, std.math.maxInt(u32))), .fd = p.fb });
        self.maybeArm(p, &p.ab);
        self.maybeArm(p, &p.ba);
    }

    // ---- buffers -----------------------------------------------------------------------------

    fn bufPtr(self: *Engine, bid: u16) [*]u8 {
        return self.bufs + @as(usize, bid) * BUF_SIZE;
    }

    /// Give back the pages of every dirty buffer not held (in the free stack or the kernel's ring:
    /// the kernel's next write into one faults in a zeroed page), in runs of adjacent buffers.
    fn reclaim(self: *Engine) void {
        var span: u32 = 0;
        var i: u32 = 0;
        while (i <= self.buf_count) : (i += 1) {
            const take = i < self.buf_count and self.buf_state[i] == DIRTY;
            if (take) {
                self.buf_state[i] = 0;
                self.dirty -= 1;
                span += 1;
                continue;
            }
            if (span > 0) {
                _ = linux.madvise(self.bufPtr(@intCast(i - span)), @as(usize, span) * BUF_SIZE, linux.MADV.DONTNEED);
                _ = @atomicRmw(u64, &self.reclaims, .Add, 1, .monotonic);
                span = 0;
            }
        }
    }

    fn hold(self: *Engine, d: *Dir, bid: u16, len: u32) void {
        self.buf_state[bid] |= HELD;
        self.buf_len[bid] = len;
        self.buf_next[bid] = NONE;
        if (d.tail != NONE) self.buf_next[d.tail] = bid else d.head = bid;
        d.tail = bid;
        d.held += 1;
        _ = @atomicRmw(i32, &self.held_now, .Add, 1, .monotonic);
        if (d.held > self.peak_dir_held) @atomicStore(u32, &self.peak_dir_held, d.held, .monotonic);
    }

    /// `n` bytes of `d`'s list were sent: the buffers sent in full go back to the pool.
    fn consume(self: *Engine, d: *Dir, n: u32) void {
        var left = n;
        while (left > 0 and d.head != NONE) {
            const bid = d.head;
            const avail = self.buf_len[bid] - d.head_off;
            if (left < avail) {
                d.head_off += left;
                return;
            }
            left -= avail;
            d.head_off = 0;
            d.head = self.buf_next[bid];
            if (d.head == NONE) d.tail = NONE;
            d.held -= 1;
            _ = @atomicRmw(i32, &self.held_now, .Sub, 1, .monotonic);
            self.freeBuf(bid);
        }
    }

    fn freeBuf(self: *Engine, bid: u16) void {
        self.buf_state[bid] &= ~HELD;
        self.free[self.free_len] = bid;
        self.free_len += 1;
    }

    /// Top the kernel's ring up to ring_target from the top of the free stack, then re-arm the
    /// directions that were waiting for buffers.
    fn refill(self: *Engine) void {
        self.ring_low = @min(self.ring_low, self.in_ring);
        const mask = IoUring.buf_ring_mask(@intCast(self.buf_count));
        var added: u16 = 0;
        while (self.in_ring < self.ring_target and self.free_len > 0) {
            self.free_len -= 1;
            const bid = self.free[self.free_len];
            IoUring.buf_ring_add(self.br, self.bufPtr(bid)[0..BUF_SIZE], bid, mask, added);
            added += 1;
            self.in_ring += 1;
        }
        if (added > 0) IoUring.buf_ring_advance(self.br, added);
        while (self.in_ring > 0) {
            const d = self.starved_head orelse break;
            self.unstarve(d);
            self.maybeArm(pairOf(d), d);
        }
    }

    fn starve(self: *Engine, d: *Dir) void {
        d.starved = true;
        d.starved_prev = null;
        d.starved_next = self.starved_head;
        if (self.starved_head) |h| h.starved_prev = d;
        self.starved_head = d;
    }

    fn unstarve(self: *Engine, d: *Dir) void {
        if (!d.starved) return;
        d.starved = false;
        if (d.starved_prev) |pv| pv.starved_next = d.starved_next else self.starved_head = d.starved_next;
        if (d.starved_next) |nx| nx.starved_prev = d.starved_prev;
        d.starved_prev = null;
        d.starved_next = null;
    }
};

/// A listening socket the engine accepts on (native accept): its dup and its multishot accept.
const Listener = struct {
    id: u32,
    fd: i32,
    /// The multishot accept is in flight.
    armed: bool = false,
    /// unlisten(): freed once the accept's last completion has come.
    closing: bool = false,
    next: ?*Listener = null,
};

fn setIntOpt(fd: i32, level: i32, opt: u32) void {
    const one: i32 = 1;
    _ = linux.setsockopt(fd, level, opt, @ptrCast(&one), @sizeOf(i32));
}

fn pairOf(d: *Dir) *Pair {
    return if (d.which == .ab) @fieldParentPtr("ab", d) else @fieldParentPtr("ba", d);
}

/// The ring with the cheapest completion processing this kernel accepts.
fn initRing() !IoUring {
    const attempts = [_]u32{
        linux.IORING_SETUP_SINGLE_ISSUER | linux.IORING_SETUP_DEFER_TASKRUN,
        linux.IORING_SETUP_COOP_TASKRUN,
        0,
    };
    for (attempts, 0..) |flags, i| {
        var params = std.mem.zeroInit(linux.io_uring_params, .{ .flags = flags | linux.IORING_SETUP_CQSIZE, .cq_entries = CQ_ENTRIES });
        return IoUring.init_params(SQ_ENTRIES, &params) catch |e| {
            if (e == error.ArgumentsInvalid and i + 1 < attempts.len) continue;
            return e;
        };
    }
    unreachable;
}

// ---- probe ---------------------------------------------------------------------------------------

/// What the probe tried when it failed (JS names it in the log).
pub const ProbeStep = enum(c_int) { none = 0, setup = 1, features = 2, opcodes = 3, buffer_ring = 4, multishot_recv = 5 };
pub var probe_step: ProbeStep = .none;
/// The kernel caps a multishot receive at sqe->optlen bytes (6.17); older ones refuse the field.
pub var recv_cap_supported: bool = false;

/// Can this kernel run the engine? 0, or -errno of the first refusal (probe_step names the step):
/// io_uring_setup (EPERM when /proc/sys/kernel/io_uring_disabled or seccomp forbids it), fast poll
/// and no-drop completions (5.7), the opcodes used, a provided-buffer ring (5.19) and a multishot
/// receive into it (6.0), on a unix socketpair.
pub fn probe() c_int {
    probe_step = .setup;
    var ring = IoUring.init(8, 0) catch |e| return switch (e) {
        error.PermissionDenied => sys.errnoInt(.PERM),
        error.SystemOutdated => sys.errnoInt(.NOSYS),
        error.SystemResources => sys.errnoInt(.NOMEM),
        error.ProcessFdQuotaExceeded => sys.errnoInt(.MFILE),
        error.SystemFdQuotaExceeded => sys.errnoInt(.NFILE),
        else => sys.errnoInt(.INVAL),
    };
    defer ring.deinit();
    probe_step = .features;
    if (ring.features & FEATURES != FEATURES) return sys.errnoInt(.OPNOTSUPP);
    probe_step = .opcodes;
    const ops = ring.get_probe() catch return sys.errnoInt(.OPNOTSUPP);
    for ([_]linux.IORING_OP{ .RECV, .SEND, .SENDMSG, .ASYNC_CANCEL, .TIMEOUT, .POLL_ADD, .ACCEPT, .CONNECT, .LINK_TIMEOUT }) |op| {
        if (!ops.is_supported(op)) return sys.errnoInt(.OPNOTSUPP);
    }
    probe_step = .buffer_ring;
    const br = IoUring.setup_buf_ring(ring.fd, 1, GROUP, .{ .inc = false }) catch |e| return switch (e) {
        error.ArgumentsInvalid => sys.errnoInt(.INVAL),
        else => sys.errnoInt(.NOMEM),
    };
    defer IoUring.free_buf_ring(ring.fd, br, 1, GROUP);
    IoUring.buf_ring_init(br);
    var bufs: [2][16]u8 = undefined;
    IoUring.buf_ring_add(br, &bufs[0], 0, 0, 0);
    IoUring.buf_ring_advance(br, 1);
    probe_step = .multishot_recv;
    var sv: [2]i32 = undefined;
    const rc = linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0, &sv);
    if (linux.errno(rc) != .SUCCESS) return sys.negErrno(rc);
    defer closeFd(sv[0]);
    defer closeFd(sv[1]);
    // With a cap of 1 byte: one completion that ends the receive (no F_MORE; the kernel fills the
    // buffer it picked, so the cap is exact only to a buffer), or EINVAL from a kernel without it.
    _ = linux.write(sv[0], "xy", 2);
    const capped = probeRecv(&ring, sv[1], 1) catch return sys.errnoInt(.INVAL);
    recv_cap_supported = capped.res > 0 and capped.flags & linux.IORING_CQE_F_MORE == 0;
    if (capped.flags & linux.IORING_CQE_F_BUFFER != 0) {
        // Its buffer came out of the ring: put the other one in.
        IoUring.buf_ring_add(br, &bufs[1], 1, 0, 0);
        IoUring.buf_ring_advance(br, 1);
    }
    // Bytes waiting, so the receive completes at once whatever the first one took.
    _ = linux.write(sv[0], "z", 1);
    const c = probeRecv(&ring, sv[1], 0) catch return sys.errnoInt(.INVAL);
    if (c.res < 0) return -@as(c_int, -c.res);
    if (c.res < 1 or c.flags & linux.IORING_CQE_F_BUFFER == 0 or c.flags & linux.IORING_CQE_F_MORE == 0) return sys.errnoInt(.OPNOTSUPP);
    // Closing the ring cancels the receive still armed.
    probe_step = .none;
    return 0;
}

/// A multishot receive on `fd` (capped at `cap` bytes unless 0) and its first completion; waits,
/// so the probe writes the bytes first.
fn probeRecv(ring: *IoUring, fd: i32, cap: u32) !linux.io_uring_cqe {
    const sqe = try ring.get_sqe();
    sqe.prep_rw(.RECV, fd, 0, 0, 0);
    sqe.flags |= linux.IOSQE_BUFFER_SELECT;
    sqe.buf_index = GROUP;
    sqe.ioprio |= linux.IORING_RECV_MULTISHOT;
    sqe.splice_fd_in = @intCast(cap);
    sqe.user_data = 1;
    _ = try ring.submit_and_wait(1);
    return ring.copy_cqe();
}

// ---------------------------------------------------------------------------------------------
// Tests: real loopback TCP connections (test_rig.zig):
//   client c <-> p1 (accepted)   [engine relays p1 <-> p2]   p2 (connected) <-> b backend
const testing = std.testing;
const rig = @import("test_rig.zig");
const Rig = rig.Rig;
const waitRecord = rig.waitRecord;
const writeAll = rig.writeAll;
const readToEof = rig.readToEof;
const readVerified = rig.readVerified;
const writerThread = rig.writerThread;
const sleepMs = rig.sleepMs;

fn startEngine(opts: Options) !*Engine {
    if (probe() != 0) return error.SkipZigTest;
    return Engine.create(testing.allocator, opts);
}

fn closeProxySides(r: *Rig) void {
    closeFd(r.p1);
    r.p1 = -1;
    closeFd(r.p2);
    r.p2 = -1;
}

test "probe: this kernel runs the uring engine" {
    try testing.expectEqual(@as(c_int, 0), probe());
    try testing.expectEqual(ProbeStep.none, probe_step);
}

test "8 MiB each way at once: every byte in order, FIN ends each direction, counts and reason" {
    const e = try startEngine(.{});
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 42));
    const total: usize = 8 << 20;
    const t1 = try std.Thread.spawn(.{}, writerThread, .{ r.c, total });
    const t2 = try std.Thread.spawn(.{}, writerThread, .{ r.b, total + 3 });
    const VerifyResult = struct { v: rig.Verified = undefined, failed: bool = false };
    var back: VerifyResult = .{};
    const reader = try std.Thread.spawn(.{}, struct {
        fn f(fd: i32, out: *VerifyResult) void {
            out.v = readVerified(fd) catch {
                out.failed = true;
                return;
            };
        }
    }.f, .{ r.c, &back });
    const there = try readVerified(r.b);
    t1.join();
    t2.join();
    reader.join();
    try testing.expect(!back.failed);
    try testing.expectEqual(@as(u64, total), there.n);
    try testing.expectEqual(@as(?u64, null), there.first_bad);
    try testing.expectEqual(@as(u64, total + 3), back.v.n);
    try testing.expectEqual(@as(?u64, null), back.v.first_bad);
    const rec = try waitRecord(e);
    try testing.expectEqual(@as(u64, 42), rec.id);
    try testing.expectEqual(@as(u64, total), rec.a_to_b);
    try testing.expectEqual(@as(u64, total + 3), rec.b_to_a);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(i32, 0), e.activeCount());
    try testing.expectEqual(@as(i32, 0), e.heldBuffers());
}

test "half-close: the backend keeps sending after the client's FIN" {
    const e = try startEngine(.{});
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 7));
    try writeAll(r.c, "question");
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    const q = try readToEof(r.b); // the FIN arrived after the bytes
    try testing.expectEqual(@as(u64, 8), q.n);
    sleepMs(50);
    try testing.expectEqual(@as(i32, 1), e.activeCount()); // b -> a still open
    try writeAll(r.b, "answer after FIN");
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    const a = try readToEof(r.c);
    try testing.expectEqual(@as(u64, 16), a.n);
    const rec = try waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, 8), rec.a_to_b);
    try testing.expectEqual(@as(u64, 16), rec.b_to_a);
}

test "half-close: the client keeps sending after the backend's FIN" {
    const e = try startEngine(.{});
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 8));
    try writeAll(r.b, "greeting");
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    const g = try readToEof(r.c);
    try testing.expectEqual(@as(u64, 8), g.n);
    sleepMs(50);
    try testing.expectEqual(@as(i32, 1), e.activeCount());
    try writeAll(r.c, "more from the client");
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    const m = try readToEof(r.b);
    try testing.expectEqual(@as(u64, 20), m.n);
    const rec = try waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, 20), rec.a_to_b);
    try testing.expectEqual(@as(u64, 8), rec.b_to_a);
}

test "reset: a client RST reaches the backend as a reset" {
    const e = try startEngine(.{});
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
    try testing.expectEqual(@as(u64, 5), rec.a_to_b);
    // Bun's fds are the last references: closing them sends the RST on.
    closeProxySides(&r);
    try testing.expectError(error.ConnReset, readToEof(r.b));
}

test "reset: a backend RST whose error someone else already read still passes on as a reset" {
    const e = try startEngine(.{});
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 10));
    setLingerZero(r.b);
    closeFd(r.b);
    r.b = -1;
    // What Bun does on its own (paused) fd when EPOLLERR fires: read and clear SO_ERROR.
    var i: usize = 0;
    while (i < 1000 and sockError(r.p2) == 0 and tcpState(r.p2) != TCP_CLOSE) : (i += 1) sleepMs(1);
    const rec = try waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.b_reset), rec.reason);
    closeProxySides(&r);
    try testing.expectError(error.ConnReset, readToEof(r.c));
}

test "idle timeout completes a silent pair, activity restarts its clock" {
    const e = try startEngine(.{});
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    const t0 = nowMs();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 300, 11));
    for (0..4) |_| {
        sleepMs(150);
        try writeAll(r.c, "x");
    }
    const rec = try waitRecord(e);
    const took = nowMs() - t0;
    try testing.expectEqual(@intFromEnum(Reason.idle_timeout), rec.reason);
    try testing.expectEqual(@as(u64, 4), rec.a_to_b);
    // 600 ms of activity, then 300 ms of silence, found by a sweep every TICK_MS.
    try testing.expect(took >= 850 and took < 600 + 300 + 2 * TICK_MS + 500);
    closeProxySides(&r);
    const got = try readToEof(r.b);
    try testing.expectEqual(@as(u64, 4), got.n);
}

/// A backend streams 256 MiB to a client that does not read: the writer must stall with the
/// engine holding at most `bound` buffers in that direction; then every byte arrives in order.
fn stalledReader(opts: Options, bound: u32) !void {
    const e = try startEngine(opts);
    defer e.destroy();
    const r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 12));
    const total: usize = 256 << 20;
    var progress: rig.Progress = .{};
    const t = try std.Thread.spawn(.{}, rig.countingWriter, .{ r.b, total, &progress });
    const stalled_at = rig.waitStalled(&progress, 300);
    const held = e.heldBuffers();
    const peak = e.peakDirHeld();
    std.debug.print("uring (receive cap {}): writer stalled after {d} KiB; engine holds {d} buffers (peak {d} in one direction)\n", .{ e.recv_cap, stalled_at / 1024, held, peak });
    // Backpressure reached the writer: TCP's windows, not the engine, hold the rest.
    try testing.expect(stalled_at < total / 4);
    try testing.expect(held <= bound);
    try testing.expect(peak <= bound);
    const got = try readVerified(r.c);
    t.join();
    try testing.expectEqual(@as(u64, total), got.n);
    try testing.expectEqual(@as(?u64, null), got.first_bad);
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    const rec = try waitRecord(e);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, total), rec.b_to_a);
    try testing.expectEqual(@as(i32, 0), e.heldBuffers());
}

test "a reader that stops, receives capped by the kernel: the engine holds at most HIGH buffers, the writer stalls, nothing is lost" {
    _ = probe();
    if (!recv_cap_supported) return error.SkipZigTest;
    // The kernel fills the buffer it picked whatever the cap left (one buffer over at most), and a
    // receive shorter than a buffer leaves room for one more: a few over HIGH, far below a burst.
    try stalledReader(.{}, HIGH + 4);
}

test "a reader that stops, no kernel cap (cancel instead): held buffers stay bounded, nothing is lost" {
    // The multishot burst before the cancel lands comes on top of HIGH: at most what one batch of
    // completions carries (MULTISHOT_MAX_RETRY = 32 receives per wake-up in the kernel).
    try stalledReader(.{ .recv_cap = false }, HIGH + 4 * 32);
}

fn verifyInto(fd: i32, out: *rig.Verified, failed: *bool) void {
    out.* = readVerified(fd) catch {
        failed.* = true;
        return;
    };
}

test "a pool of 8 buffers for 16 busy pairs: receives wait for buffers (ENOBUFS) and every byte still arrives" {
    const e = try startEngine(.{ .buf_count = 8 });
    defer e.destroy();
    const N = 16;
    const total: usize = 2 << 20;
    var rigs: [N]Rig = undefined;
    var made: usize = 0;
    defer for (rigs[0..made]) |r| r.deinit();
    for (&rigs, 0..) |*r, i| {
        r.* = try Rig.init();
        made += 1;
        try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, i));
    }
    var writers: [N]std.Thread = undefined;
    var readers: [N]std.Thread = undefined;
    var got: [N]rig.Verified = undefined;
    var failed: [N]bool = @splat(false);
    for (rigs, 0..) |r, i| {
        writers[i] = try std.Thread.spawn(.{}, writerThread, .{ r.c, total });
        readers[i] = try std.Thread.spawn(.{}, verifyInto, .{ r.b, &got[i], &failed[i] });
    }
    for (writers) |t| t.join();
    for (readers) |t| t.join();
    for (0..N) |i| {
        try testing.expect(!failed[i]);
        try testing.expectEqual(@as(u64, total), got[i].n);
        try testing.expectEqual(@as(?u64, null), got[i].first_bad);
    }
    try testing.expect(e.enobufsCount() > 0);
    for (rigs) |r| _ = linux.shutdown(r.b, linux.SHUT.WR);
    for (0..N) |_| {
        const rec = try waitRecord(e);
        try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
        try testing.expectEqual(@as(u64, total), rec.a_to_b);
    }
}

test "stopping the engine completes every live pair with `shutdown`" {
    const e = try startEngine(.{});
    defer e.destroy();
    var rigs: [50]Rig = undefined;
    for (&rigs, 0..) |*r, i| {
        r.* = try Rig.init();
        try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, i));
    }
    defer for (rigs) |r| r.deinit();
    for (rigs) |r| {
        try writeAll(r.c, "ping");
        _ = try rig.readExact(r.b, 4);
    }
    try testing.expectEqual(@as(i32, 50), e.activeCount());
    e.stop();
    var seen: [50]bool = @splat(false);
    var recs: [64]Record = undefined;
    const n = e.poll(&recs);
    try testing.expectEqual(@as(usize, 50), n);
    for (recs[0..n]) |rec| {
        try testing.expectEqual(@intFromEnum(Reason.shutdown), rec.reason);
        try testing.expectEqual(@as(u64, 4), rec.a_to_b);
        seen[rec.id] = true;
    }
    for (seen) |s| try testing.expect(s);
    try testing.expectEqual(@as(i32, 0), e.activeCount());
    try testing.expect(e.add(rigs[0].p1, rigs[0].p2, 0, 99) < 0);
}

test "the engine closes its dups: 100 pairs done leave no fd behind" {
    const e = try startEngine(.{});
    defer e.destroy();
    const before = try rig.countFds();
    for (0..100) |i| {
        var r = try Rig.init();
        try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, i));
        try writeAll(r.c, "hi");
        _ = try rig.readExact(r.b, 2);
        _ = linux.shutdown(r.c, linux.SHUT.WR);
        _ = linux.shutdown(r.b, linux.SHUT.WR);
        _ = try readToEof(r.c);
        const rec = try waitRecord(e);
        try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
        closeProxySides(&r);
        r.deinit();
    }
    try testing.expectEqual(before, try rig.countFds());
}

test "an idle engine gives the pages of its buffers back, and relays as before afterwards" {
    const e = try startEngine(.{});
    defer e.destroy();
    const N = 32;
    var rigs: [N]Rig = undefined;
    var made: usize = 0;
    defer for (rigs[0..made]) |r| r.deinit();
    for (&rigs, 0..) |*r, i| {
        r.* = try Rig.init();
        made += 1;
        try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, i));
    }
    const size: usize = 256 << 10;
    for (0..2) |round| {
        for (rigs) |r| {
            const t = try std.Thread.spawn(.{}, rig.writerNoFin, .{ r.c, size });
            try testing.expectEqual(patternSum(size), try rig.readExact(r.b, size));
            t.join();
        }
        if (round == 0) try testing.expect(e.dirtyBuffers() > 0);
        // Two quiet ticks: the first may still have seen the last buffers consumed.
        sleepMs(3 * TICK_MS);
        try testing.expectEqual(@as(u32, 0), e.dirtyBuffers());
        try testing.expect(@atomicLoad(u64, &e.reclaims, .monotonic) > 0);
    }
    try testing.expectEqual(@as(i32, N), e.activeCount());
}

/// Sum of the first `total` bytes the rig's writers send.
fn patternSum(total: usize) u64 {
    var sum: u64 = 0;
    for (0..total) |i| sum +%= rig.patternAt(i);
    return sum;
}

test "a pair costs the engine one small allocation" {
    // Per idle pair: this struct (malloc) and the 2 dups; buffers are shared and given back when idle.
    try testing.expect(@sizeOf(Pair) <= 256);
}

// ---- streams to splice ---------------------------------------------------------------------------

/// The splice engine the handoff tests give streams to (HandoffFn has no context: lib.zig's is a global too).
var test_splice: ?*@import("splice.zig").Engine = null;

fn testAdopt(fd_a: i32, fd_b: i32, idle_ms: i64, id: u64, a_to_b: u64, b_to_a: u64) c_int {
    return test_splice.?.adopt(fd_a, fd_b, idle_ms, id, a_to_b, b_to_a);
}

fn refuseAdopt(_: i32, _: i32, _: i64, _: u64, _: u64, _: u64) c_int {
    return sys.errnoInt(.NOMEM);
}

fn startSplice() !*@import("splice.zig").Engine {
    const s = try @import("splice.zig").Engine.create(testing.allocator, 1, 0);
    test_splice = s;
    return s;
}

/// A splice engine and a uring engine handing it its streams.
const StreamEngines = struct {
    s: *@import("splice.zig").Engine,
    e: *Engine,
    fn deinit(self: StreamEngines) void {
        self.e.destroy();
        self.s.destroy();
    }
};

fn startStreamEngines() !StreamEngines {
    const s = try startSplice();
    errdefer s.destroy();
    const e = try startEngine(.{ .handoff = testAdopt });
    errdefer e.destroy();
    try testing.expect(e.streamsToSplice(true));
    return .{ .s = s, .e = e };
}

/// 8 MiB a->b then FIN, then 3 bytes b->a and FIN; checks every byte; the record from whichever
/// engine finished the pair.
fn oneWayStream(r: Rig) !void {
    const total: usize = 8 << 20;
    const w = try std.Thread.spawn(.{}, writerThread, .{ r.c, total });
    const there = try readVerified(r.b);
    w.join();
    try testing.expectEqual(@as(u64, total), there.n);
    try testing.expectEqual(@as(?u64, null), there.first_bad);
    try writeAll(r.b, "bye");
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    const back = try readToEof(r.c);
    try testing.expectEqual(@as(u64, 3), back.n);
}

test "streams: 8 MiB one way goes to splice after STREAM_MIN, every byte in order, splice's record counts all of it" {
    const engines = try startStreamEngines();
    defer engines.deinit();
    const s = engines.s;
    const e = engines.e;
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 51));
    try oneWayStream(r);
    const rec = try waitRecord(s);
    try testing.expectEqual(@as(u64, 51), rec.id);
    try testing.expectEqual(@as(u64, 8 << 20), rec.a_to_b);
    try testing.expectEqual(@as(u64, 3), rec.b_to_a);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, 1), e.handedOff());
    var none: [1]Record = undefined;
    try testing.expectEqual(@as(usize, 0), e.poll(&none));
    try testing.expectEqual(@as(i32, 0), e.activeCount());
    try testing.expectEqual(@as(i32, 0), s.activeCount());
    try testing.expectEqual(@as(i32, 0), e.heldBuffers());
}

test "streams: a slow reader's stream is handed over with its held buffers sent first, nothing lost" {
    const engines = try startStreamEngines();
    defer engines.deinit();
    const s = engines.s;
    const e = engines.e;
    var r = try Rig.init();
    defer r.deinit();
    rig.setBuf(r.b, linux.SO.RCVBUF, 16 * 1024);
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 52));
    const total: usize = 4 << 20;
    const w = try std.Thread.spawn(.{}, writerThread, .{ r.c, total });
    var buf: [4096]u8 = undefined;
    var n: u64 = 0;
    var bad: ?u64 = null;
    while (true) {
        const rc = linux.read(r.b, &buf, buf.len);
        try testing.expectEqual(linux.E.SUCCESS, linux.errno(rc));
        if (rc == 0) break;
        for (buf[0..rc], 0..) |x, i| if (bad == null and x != rig.patternAt(n + i)) {
            bad = n + i;
        };
        n += rc;
        if (n % (256 * 1024) < 4096) sleepMs(1);
    }
    w.join();
    try testing.expectEqual(@as(u64, total), n);
    try testing.expectEqual(@as(?u64, null), bad);
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    _ = try readToEof(r.c);
    const rec = try waitRecord(s);
    try testing.expectEqual(@as(u64, total), rec.a_to_b);
    try testing.expectEqual(@as(u64, 1), e.handedOff());
}

test "streams: request/response never hands over, however many bytes it moves" {
    const engines = try startStreamEngines();
    defer engines.deinit();
    const e = engines.e;
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 53));
    var msg: [16 * 1024]u8 = undefined;
    @memset(&msg, 'q');
    // 16 KiB requests, 16 KiB answers: 3 MiB each way, more than STREAM_MIN in all.
    for (0..192) |_| {
        try writeAll(r.c, &msg);
        _ = try rig.readExact(r.b, msg.len);
        try writeAll(r.b, &msg);
        _ = try rig.readExact(r.c, msg.len);
    }
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    _ = linux.shutdown(r.b, linux.SHUT.WR);
    _ = try readToEof(r.b);
    _ = try readToEof(r.c);
    const rec = try waitRecord(e);
    try testing.expectEqual(@as(u64, 53), rec.id);
    try testing.expectEqual(@as(u64, 192 * msg.len), rec.a_to_b);
    try testing.expectEqual(@as(u64, 0), e.handedOff());
}

test "streams: a refused handoff relays on in this engine, every byte intact" {
    const e = try startEngine(.{ .handoff = refuseAdopt });
    defer e.destroy();
    try testing.expect(e.streamsToSplice(true));
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 54));
    try oneWayStream(r);
    const rec = try waitRecord(e);
    try testing.expectEqual(@as(u64, 54), rec.id);
    try testing.expectEqual(@as(u64, 8 << 20), rec.a_to_b);
    try testing.expectEqual(@as(u64, 0), e.handedOff());
}

test "streams: off unless turned on" {
    const e = try startEngine(.{ .handoff = refuseAdopt });
    defer e.destroy();
    var r = try Rig.init();
    defer r.deinit();
    try testing.expectEqual(@as(c_int, 0), e.add(r.p1, r.p2, 0, 55));
    try oneWayStream(r);
    const rec = try waitRecord(e);
    try testing.expectEqual(@as(u64, 55), rec.id);
    const plain = try startEngine(.{});
    defer plain.destroy();
    try testing.expect(!plain.streamsToSplice(true));
}

// ---- native accept --------------------------------------------------------------------------------
//   client c -> listening socket ls [engine accepts, JS answers, engine dials] -> backend bs

const LOOPBACK = [4]u8{ 127, 0, 0, 1 };

/// A listening loopback socket with `backlog`, and its port.
fn listenLoopback(backlog: u31) !struct { fd: i32, port: u16 } {
    const fd: i32 = @intCast(linux.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC | linux.SOCK.NONBLOCK, 0));
    var addr = linux.sockaddr.in{ .port = 0, .addr = @bitCast(LOOPBACK) };
    var len: linux.socklen_t = @sizeOf(linux.sockaddr.in);
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.bind(fd, @ptrCast(&addr), len)));
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.listen(fd, backlog)));
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.getsockname(fd, @ptrCast(&addr), &len)));
    return .{ .fd = fd, .port = std.mem.bigToNative(u16, addr.port) };
}

/// A blocking client connected to loopback `port`, and its own port.
fn connectLoopback(port: u16) !struct { fd: i32, port: u16 } {
    const fd: i32 = @intCast(linux.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0));
    var addr = linux.sockaddr.in{ .port = std.mem.nativeToBig(u16, port), .addr = @bitCast(LOOPBACK) };
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.connect(fd, @ptrCast(&addr), @sizeOf(linux.sockaddr.in))));
    var len: linux.socklen_t = @sizeOf(linux.sockaddr.in);
    _ = linux.getsockname(fd, @ptrCast(&addr), &len);
    return .{ .fd = fd, .port = std.mem.bigToNative(u16, addr.port) };
}

fn acceptBlocking(ls: i32) !i32 {
    var i: usize = 0;
    while (i < 5000) : (i += 1) {
        const rc = linux.accept4(ls, null, null, linux.SOCK.CLOEXEC);
        if (linux.errno(rc) == .SUCCESS) return @intCast(rc);
        sleepMs(1);
    }
    return error.NoConnection;
}

fn waitEvent(e: *Engine) !Event {
    var out: [1]Event = undefined;
    var i: usize = 0;
    while (i < 5000) : (i += 1) {
        if (e.pollEvents(&out) == 1) return out[0];
        sleepMs(1);
    }
    return error.NoEvent;
}

fn dialLoopback(e: *Engine, token: u64, id: u64, port: u16, timeout_ms: u32) !void {
    try testing.expectEqual(@as(c_int, 0), e.connect(Command.dial(token, id, 4, &LOOPBACK, port, timeout_ms, 0).?));
}

test "native accept: the client is announced with its address, dialled on JS's answer, relayed both ways to FIN" {
    const e = try startEngine(.{});
    defer e.destroy();
    const front = try listenLoopback(16);
    defer closeFd(front.fd);
    const back = try listenLoopback(16);
    defer closeFd(back.fd);
    try testing.expectEqual(@as(c_int, 0), e.listen(front.fd, 3));
    const c = try connectLoopback(front.port);
    defer closeFd(c.fd);
    const ev = try waitEvent(e);
    try testing.expectEqual(@intFromEnum(accept_mod.EventKind.accepted), ev.kind);
    try testing.expectEqual(@as(u32, 3), ev.arg);
    try testing.expectEqual(@as(u16, 4), ev.family);
    try testing.expectEqual(c.port, ev.port);
    try testing.expectEqualSlices(u8, &LOOPBACK, ev.addr[0..4]);
    // Bytes sent before the answer wait in the kernel and arrive first.
    try writeAll(c.fd, "early ");
    try dialLoopback(e, ev.key, 77, back.port, 2000);
    const b = try acceptBlocking(back.fd);
    defer closeFd(b);
    const conn = try waitEvent(e);
    try testing.expectEqual(@intFromEnum(accept_mod.EventKind.connected), conn.kind);
    try testing.expectEqual(@as(u64, 77), conn.key);
    try testing.expect(conn.fd >= 0 and conn.fd != ev.fd and ev.fd >= 0);
    try testing.expect(conn.arg < 2_000_000);
    // The upstream socket has TCP_NODELAY; the accepted one inherited it from the listening socket.
    var v: i32 = 0;
    var len: linux.socklen_t = 4;
    _ = linux.getsockopt(front.fd, linux.IPPROTO.TCP, linux.TCP.NODELAY, @ptrCast(&v), &len);
    try testing.expectEqual(@as(i32, 1), v);
    try writeAll(c.fd, "question");
    _ = linux.shutdown(c.fd, linux.SHUT.WR);
    const q = try readToEof(b);
    try testing.expectEqual(@as(u64, 14), q.n);
    try writeAll(b, "answer");
    _ = linux.shutdown(b, linux.SHUT.WR);
    const a = try readToEof(c.fd);
    try testing.expectEqual(@as(u64, 6), a.n);
    const rec = try waitRecord(e);
    try testing.expectEqual(@as(u64, 77), rec.id);
    try testing.expectEqual(@intFromEnum(Reason.done), rec.reason);
    try testing.expectEqual(@as(u64, 14), rec.a_to_b);
    try testing.expectEqual(@as(u64, 6), rec.b_to_a);
    try testing.expectEqual(@as(i32, 0), e.activeCount());
    try testing.expectEqual(@as(u32, 0), e.tokens.count());
}

test "accepted sockets inherit TCP_NODELAY and SO_KEEPALIVE from the listening socket" {
    const front = try listenLoopback(4);
    defer closeFd(front.fd);
    setIntOpt(front.fd, linux.IPPROTO.TCP, linux.TCP.NODELAY);
    setIntOpt(front.fd, linux.SOL.SOCKET, linux.SO.KEEPALIVE);
    const c = try connectLoopback(front.port);
    defer closeFd(c.fd);
    const s = try acceptBlocking(front.fd);
    defer closeFd(s);
    for ([_][2]u32{ .{ linux.IPPROTO.TCP, linux.TCP.NODELAY }, .{ linux.SOL.SOCKET, linux.SO.KEEPALIVE } }) |o| {
        var v: i32 = 0;
        var len: linux.socklen_t = 4;
        _ = linux.getsockopt(s, @intCast(o[0]), o[1], @ptrCast(&v), &len);
        try testing.expectEqual(@as(i32, 1), v);
    }
}

test "native accept: a refused connect is a connect_failed record with ECONNREFUSED, and the client gets FIN" {
    const e = try startEngine(.{});
    defer e.destroy();
    const front = try listenLoopback(16);
    defer closeFd(front.fd);
    const dead = try listenLoopback(1);
    const dead_port = dead.port;
    closeFd(dead.fd); // nobody listens there now
    try testing.expectEqual(@as(c_int, 0), e.listen(front.fd, 1));
    const c = try connectLoopback(front.port);
    defer closeFd(c.fd);
    const ev = try waitEvent(e);
    try dialLoopback(e, ev.key, 5, dead_port, 1000);
    const rec = try waitRecord(e);
    try testing.expectEqual(@as(u64, 5), rec.id);
    try testing.expectEqual(@intFromEnum(Reason.connect_failed), rec.reason);
    try testing.expectEqual(@as(u32, @intFromEnum(linux.E.CONNREFUSED)), rec.err);
    _ = try readToEof(c.fd);
}

test "native accept: an upstream that never answers the SYN ends in connect_timeout after the timeout" {
    const e = try startEngine(.{});
    defer e.destroy();
    const front = try listenLoopback(16);
    defer closeFd(front.fd);
    // A backlog of 0 that one unaccepted connection fills: the kernel drops further SYNs.
    const full = try listenLoopback(0);
    defer closeFd(full.fd);
    const filler = try connectLoopback(full.port);
    defer closeFd(filler.fd);
    const filler2 = linux.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC | linux.SOCK.NONBLOCK, 0);
    defer closeFd(@intCast(filler2));
    var fa = linux.sockaddr.in{ .port = std.mem.nativeToBig(u16, full.port), .addr = @bitCast(LOOPBACK) };
    _ = linux.connect(@intCast(filler2), @ptrCast(&fa), @sizeOf(linux.sockaddr.in));
    sleepMs(50);
    try testing.expectEqual(@as(c_int, 0), e.listen(front.fd, 1));
    const c = try connectLoopback(front.port);
    defer closeFd(c.fd);
    const ev = try waitEvent(e);
    const t0 = nowMs();
    try dialLoopback(e, ev.key, 6, full.port, 300);
    const rec = try waitRecord(e);
    const took = nowMs() - t0;
    try testing.expectEqual(@intFromEnum(Reason.connect_timeout), rec.reason);
    try testing.expect(took >= 290 and took < 2000);
}

test "native accept: refuse closes the client with FIN (or RST), kill resets a relayed pair; unknown tokens are ignored" {
    const e = try startEngine(.{});
    defer e.destroy();
    const front = try listenLoopback(16);
    defer closeFd(front.fd);
    const back = try listenLoopback(16);
    defer closeFd(back.fd);
    try testing.expectEqual(@as(c_int, 0), e.listen(front.fd, 1));
    const c1 = try connectLoopback(front.port);
    defer closeFd(c1.fd);
    const ev1 = try waitEvent(e);
    try testing.expectEqual(@as(c_int, 0), e.refuse(ev1.key, false));
    try testing.expectEqual(@as(u64, 0), (try readToEof(c1.fd)).n);
    const c2 = try connectLoopback(front.port);
    defer closeFd(c2.fd);
    const ev2 = try waitEvent(e);
    try testing.expectEqual(@as(c_int, 0), e.refuse(ev2.key, true));
    try testing.expectError(error.ConnReset, readToEof(c2.fd));
    const c3 = try connectLoopback(front.port);
    defer closeFd(c3.fd);
    const ev3 = try waitEvent(e);
    try dialLoopback(e, ev3.key, 9, back.port, 1000);
    const b = try acceptBlocking(back.fd);
    defer closeFd(b);
    _ = try waitEvent(e); // connected
    try writeAll(c3.fd, "x");
    _ = try rig.readExact(b, 1);
    try testing.expectEqual(@as(c_int, 0), e.kill(ev3.key));
    const rec = try waitRecord(e);
    try testing.expectEqual(@as(u64, 9), rec.id);
    try testing.expectEqual(@intFromEnum(Reason.shutdown), rec.reason);
    try testing.expectEqual(@as(u64, 1), rec.a_to_b);
    try testing.expectError(error.ConnReset, readToEof(c3.fd));
    try testing.expectError(error.ConnReset, readToEof(b));
    try testing.expectEqual(@as(c_int, 0), e.refuse(12345, false));
    try testing.expectEqual(@as(c_int, 0), e.kill(12345));
    // A dial for a token that is gone still gets its record.
    try dialLoopback(e, 12345, 10, back.port, 1000);
    const gone = try waitRecord(e);
    try testing.expectEqual(@as(u64, 10), gone.id);
    try testing.expectEqual(@intFromEnum(Reason.shutdown), gone.reason);
    try testing.expectEqual(@as(i32, 0), e.activeCount());
}

test "native accept: unlisten stops accepting; queued clients stay in the kernel for the next acceptor" {
    const e = try startEngine(.{});
    defer e.destroy();
    const front = try listenLoopback(16);
    defer closeFd(front.fd);
    try testing.expectEqual(@as(c_int, 0), e.listen(front.fd, 2));
    const c1 = try connectLoopback(front.port);
    defer closeFd(c1.fd);
    const ev = try waitEvent(e);
    try testing.expectEqual(@as(c_int, 0), e.refuse(ev.key, false));
    try testing.expectEqual(@as(c_int, 0), e.unlisten(2));
    sleepMs(50);
    const c2 = try connectLoopback(front.port);
    defer closeFd(c2.fd);
    sleepMs(50);
    var out: [1]Event = undefined;
    try testing.expectEqual(@as(usize, 0), e.pollEvents(&out));
    const s = try acceptBlocking(front.fd); // still queued on the socket
    closeFd(s);
    // Listening again (a paused listener resuming) accepts as before.
    try testing.expectEqual(@as(c_int, 0), e.listen(front.fd, 2));
    const c3 = try connectLoopback(front.port);
    defer closeFd(c3.fd);
    const ev3 = try waitEvent(e);
    try testing.expectEqual(@as(u32, 2), ev3.arg);
    try testing.expectEqual(c3.port, ev3.port);
}

test "native accept: stopping the engine closes unanswered clients and completes dialled pairs with `shutdown`" {
    const e = try startEngine(.{});
    defer e.destroy();
    const front = try listenLoopback(16);
    defer closeFd(front.fd);
    const back = try listenLoopback(16);
    defer closeFd(back.fd);
    try testing.expectEqual(@as(c_int, 0), e.listen(front.fd, 1));
    const before = try rig.countFds();
    const c1 = try connectLoopback(front.port);
    defer closeFd(c1.fd);
    _ = try waitEvent(e); // not answered
    const c2 = try connectLoopback(front.port);
    defer closeFd(c2.fd);
    const ev2 = try waitEvent(e);
    try dialLoopback(e, ev2.key, 21, back.port, 1000);
    const b = try acceptBlocking(back.fd);
    defer closeFd(b);
    _ = try waitEvent(e);
    e.stop();
    var recs: [4]Record = undefined;
    try testing.expectEqual(@as(usize, 1), e.poll(&recs));
    try testing.expectEqual(@as(u64, 21), recs[0].id);
    try testing.expectEqual(@intFromEnum(Reason.shutdown), recs[0].reason);
    _ = try readToEof(c1.fd);
    // Opened since: the clients (2) and the backend's accepted socket; closed: the engine's dup of
    // the listening socket and its ring. Nothing of the pairs is left open.
    try testing.expectEqual(before + 3 - 2, try rig.countFds());
    try testing.expect(e.listen(front.fd, 1) < 0);
}
