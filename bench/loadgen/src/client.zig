//! The client modes (rr, rate, hold, bulk): one epoll loop per thread, each thread owning a fixed set of
//! connection slots. All sockets are nonblocking and level-triggered; a slot's state says what it waits for.
//!
//!   rr    connect -> send `pipeline` requests -> each full echo completes one and sends the next
//!   rate  connect -> one request -> full echo -> close -> a fresh connection in the same slot
//!   hold  connect -> one small request -> full echo (verified) -> idle until the end
//!   bulk  connect -> write (up, to a sink) or read (down, from a source) as fast as the socket allows
const std = @import("std");
const linux = std.os.linux;
const net = @import("net.zig");
const args = @import("args.zig");
const stats_mod = @import("stats.zig");
const report = @import("report.zig");
const Stats = stats_mod.Stats;
const ErrorKind = stats_mod.ErrorKind;
const Config = args.Config;
const EPOLL = net.EPOLL;

const ns_per_ms = std.time.ns_per_ms;
/// After an error, an rr/bulk slot reconnects after this pause (so a dead target is not a busy loop).
const retry_delay_ns = 10 * ns_per_ms;
/// How often each thread scans its slots for timeouts and due retries.
const sweep_interval_ns = 25 * ns_per_ms;
/// Connects in progress per thread while opening persistent connections: thousands of simultaneous
/// SYNs would overflow the listener's backlog and turn a setup burst into spurious timeouts.
const max_opening_per_thread = 128;
/// Read buffer per thread; bulk writes come from a buffer of `--size` bytes.
const scratch_len = 256 * 1024;
/// Largest rr payload buffer (several pipelined copies of the request, written in one call).
const max_payload_len = 1 << 20;
/// Writes/reads per readiness event in bulk mode, so one stream cannot starve the others.
const bulk_ops_per_event = 4;

/// State shared by all workers and the main thread; only atomics are written concurrently.
pub const Shared = struct {
    warm_end: u64,
    /// Workers stop when their clock passes this; main lowers it on a signal (or sets it in hold).
    stop_at: std.atomic.Value(u64),
    setup_done: std.atomic.Value(u32) = .init(0),
    finished: std.atomic.Value(u32) = .init(0),
    /// hold: connections currently verified and open, summed over threads.
    held: std.atomic.Value(u64) = .init(0),
};

const State = enum(u8) { idle, connecting, exchanging, holding, streaming, waiting, dead };

const Slot = struct {
    fd: i32 = -1,
    state: State = .idle,
    /// Counted in Worker.opening until connected (rr/rate/bulk) or verified (hold).
    opening: bool = false,
    /// Events currently registered with epoll, to skip redundant epoll_ctl calls.
    interest: u32 = 0,
    /// When connect() was called: start of rate/hold latency.
    t_start: u64 = 0,
    /// connecting/exchanging/streaming: give up at this time unless progress moves it on.
    /// waiting: reconnect at this time. 0 = no deadline.
    deadline: u64 = 0,
    /// Requests issued, request bytes written and response bytes read on this connection.
    issued: u64 = 0,
    sent: u64 = 0,
    recvd: u64 = 0,
};

pub const Worker = struct {
    cfg: *const Config,
    shared: *Shared,
    ep: net.Epoll,
    slots: []Slot,
    /// rr: issue time of each in-flight request, `pipeline` entries per slot; request k lives at k % pipeline.
    ts: []u64,
    /// Slots ready to (re)connect.
    free: []u32,
    free_len: usize = 0,
    payload: []u8,
    scratch: []u8,
    stats: Stats = .{},
    opening: usize = 0,
    max_opening: usize,
    /// hold: slots neither verified nor failed yet.
    setup_left: usize,
    setup_reported: bool = false,
    /// rate --rate-limit: this thread's spacing between connection starts.
    interval_ns: u64 = 0,
    next_start: u64 = 0,
    next_sweep: u64 = 0,
    now: u64 = 0,
    stop_at: u64 = std.math.maxInt(u64),
    size: u64,

    fn init(w: *Worker, cfg: *const Config, shared: *Shared, nslots: usize, nthreads: u32) !void {
        const gpa = std.heap.smp_allocator;
        const ep = switch (net.Epoll.init()) {
            .fd => |fd| net.Epoll{ .fd = fd },
            .err => return error.EpollCreate,
        };
        const size: usize = cfg.size;
        const payload_len = switch (cfg.command) {
            // Several copies of the request so a pipelined burst goes out in one write().
            .rr => size * @max(1, @min(cfg.pipeline, max_payload_len / size)),
            else => size,
        };
        w.* = .{
            .cfg = cfg,
            .shared = shared,
            .ep = ep,
            .slots = try gpa.alloc(Slot, nslots),
            .ts = try gpa.alloc(u64, if (cfg.command == .rr) nslots * cfg.pipeline else 0),
            .free = try gpa.alloc(u32, nslots),
            .payload = try gpa.alloc(u8, payload_len),
            .scratch = try gpa.alloc(u8, scratch_len),
            .max_opening = if (cfg.command == .rate) nslots else max_opening_per_thread,
            .setup_left = nslots,
            .size = size,
        };
        @memset(w.slots, .{});
        for (w.payload, 0..) |*b, i| b.* = 'a' + @as(u8, @intCast(i % 26));
        // Pushed in reverse so slot 0 opens first.
        var i = nslots;
        while (i > 0) {
            i -= 1;
            w.pushFree(@intCast(i));
        }
        if (cfg.command == .rate and cfg.rate_limit > 0)
            w.interval_ns = @as(u64, nthreads) * std.time.ns_per_s / cfg.rate_limit;
    }

    fn deinit(w: *Worker) void {
        const gpa = std.heap.smp_allocator;
        gpa.free(w.slots);
        gpa.free(w.ts);
        gpa.free(w.free);
        gpa.free(w.payload);
        gpa.free(w.scratch);
        w.ep.deinit();
    }

    fn pushFree(w: *Worker, i: u32) void {
        w.free[w.free_len] = i;
        w.free_len += 1;
    }

    fn inWindow(w: *const Worker, t: u64) bool {
        return t >= w.shared.warm_end and t < w.stop_at;
    }

    fn run(w: *Worker) void {
        defer _ = w.shared.finished.fetchAdd(1, .release);
        var events: [256]net.Event = undefined;
        w.now = net.nowNs();
        w.next_start = w.now;
        while (true) {
            w.now = net.nowNs();
            w.stop_at = w.shared.stop_at.load(.acquire);
            if (w.now >= w.stop_at) break;
            // Sweep first: slots whose retry is due are reopened by startPending in the same pass.
            if (w.now >= w.next_sweep) {
                w.sweep();
                w.next_sweep = w.now + sweep_interval_ns;
            }
            w.startPending();
            if (w.cfg.command == .hold and !w.setup_reported and w.setup_left == 0) {
                w.setup_reported = true;
                _ = w.shared.setup_done.fetchAdd(1, .release);
            }
            const n = w.ep.wait(&events, w.waitTimeoutMs());
            w.now = net.nowNs();
            for (events[0..n]) |ev| w.onEvent(@intCast(ev.data.u64), ev.events);
        }
        // In-flight work at the end is abandoned, not counted as an error.
        for (w.slots) |*s| {
            if (s.fd < 0) continue;
            if (s.state == .holding) _ = w.shared.held.fetchSub(1, .monotonic);
            net.close(s.fd);
            s.fd = -1;
        }
    }

    fn waitTimeoutMs(w: *const Worker) i32 {
        var wait_ns: u64 = w.next_sweep -| w.now;
        wait_ns = @min(wait_ns, w.stop_at -| w.now);
        if (w.interval_ns > 0 and w.free_len > 0) wait_ns = @min(wait_ns, w.next_start -| w.now);
        return @intCast(std.math.divCeil(u64, wait_ns, ns_per_ms) catch 1);
    }

    /// Open connections for free slots, within the setup concurrency and the rate limit.
    fn startPending(w: *Worker) void {
        while (w.free_len > 0 and w.opening < w.max_opening) {
            if (w.interval_ns > 0) {
                if (w.now < w.next_start) break;
                w.next_start += w.interval_ns;
                // After a stall, do not burst to catch up more than 100 ms of schedule.
                if (w.next_start + 100 * ns_per_ms < w.now) w.next_start = w.now;
            }
            w.free_len -= 1;
            w.open(w.free[w.free_len]);
        }
    }

    fn open(w: *Worker, i: u32) void {
        const s = &w.slots[i];
        s.* = .{ .opening = true };
        w.opening += 1;
        w.stats.conns_opened += 1;
        const fd = switch (net.tcpSocket(w.cfg.target.family())) {
            .fd => |fd| fd,
            .err => |e| return w.fail(i, .other, e), // EMFILE and friends
        };
        s.fd = fd;
        s.state = .connecting;
        net.setNoDelay(fd);
        s.t_start = net.nowNs();
        s.deadline = s.t_start + @as(u64, w.cfg.timeout_ms) * ns_per_ms;
        const e = net.errno(linux.connect(fd, w.cfg.target.sockaddr(), w.cfg.target.len()));
        // Loopback connects usually return EINPROGRESS; an immediate success also reports EPOLLOUT.
        if (e != .SUCCESS and e != .INPROGRESS) return w.fail(i, stats_mod.classify(e, true), e);
        s.interest = EPOLL.OUT;
        const ae = w.ep.add(fd, s.interest, i);
        if (ae != .SUCCESS) return w.fail(i, .other, ae);
    }

    fn onEvent(w: *Worker, i: u32, ev: u32) void {
        const s = &w.slots[i];
        // A slot closed earlier in this same batch of events.
        if (s.fd < 0) return;
        switch (s.state) {
            .connecting => w.onConnected(i),
            .exchanging => w.onExchange(i, ev),
            .holding => w.onHeld(i),
            .streaming => w.onStream(i, ev),
            .idle, .waiting, .dead => {},
        }
    }

    fn onConnected(w: *Worker, i: u32) void {
        const s = &w.slots[i];
        const e = net.socketError(s.fd);
        if (e != .SUCCESS) return w.fail(i, stats_mod.classify(e, true), e);
        if (w.cfg.command != .hold) w.doneOpening(s);
        s.deadline = w.now + @as(u64, w.cfg.timeout_ms) * ns_per_ms;
        if (w.cfg.command == .bulk) {
            s.state = .streaming;
            // up: EPOLLIN only to notice the sink closing on us.
            w.setInterest(i, if (w.cfg.direction == .up) EPOLL.OUT | EPOLL.IN else EPOLL.IN);
            return;
        }
        s.state = .exchanging;
        const first: u64 = if (w.cfg.command == .rr) w.cfg.pipeline else 1;
        const t = net.nowNs();
        var k: u64 = 0;
        while (k < first) : (k += 1) w.issue(i, t);
        if (!w.flush(i)) return;
        w.setInterest(i, EPOLL.IN | w.outIfPending(s));
    }

    fn doneOpening(w: *Worker, s: *Slot) void {
        if (!s.opening) return;
        s.opening = false;
        w.opening -= 1;
    }

    /// Queue one more request on slot i, stamped with its send time.
    fn issue(w: *Worker, i: u32, t: u64) void {
        const s = &w.slots[i];
        if (w.cfg.command == .rr) w.ts[i * w.cfg.pipeline + s.issued % w.cfg.pipeline] = t;
        s.issued += 1;
    }

    fn outIfPending(w: *const Worker, s: *const Slot) u32 {
        return if (s.sent < s.issued * w.size) EPOLL.OUT else 0;
    }

    /// Write as much of the issued requests as the socket takes. False if the slot failed.
    fn flush(w: *Worker, i: u32) bool {
        const s = &w.slots[i];
        const want = s.issued * w.size;
        while (s.sent < want) {
            // Every request has the same bytes and the payload holds whole copies, so any offset
            // into the request stream maps to (sent % size) in the payload.
            const off: usize = @intCast(s.sent % w.size);
            const n: usize = @intCast(@min(want - s.sent, w.payload.len - off));
            const rc = linux.write(s.fd, w.payload.ptr + off, n);
            switch (net.errno(rc)) {
                .SUCCESS => {
                    s.sent += rc;
                    if (w.inWindow(w.now)) w.stats.bytes_sent += rc;
                },
                .INTR => {},
                .AGAIN => return true,
                else => |e| {
                    w.fail(i, stats_mod.classify(e, false), e);
                    return false;
                },
            }
        }
        return true;
    }

    fn setInterest(w: *Worker, i: u32, events: u32) void {
        const s = &w.slots[i];
        if (s.interest == events) return;
        s.interest = events;
        const e = w.ep.modify(s.fd, events, i);
        if (e != .SUCCESS) w.fail(i, .other, e);
    }

    fn onExchange(w: *Worker, i: u32, ev: u32) void {
        const s = &w.slots[i];
        if (ev & EPOLL.OUT != 0) {
            if (!w.flush(i)) return;
        }
        if (ev & (EPOLL.IN | EPOLL.ERR | EPOLL.HUP) != 0) {
            const rc = linux.read(s.fd, w.scratch.ptr, w.scratch.len);
            switch (net.errno(rc)) {
                .SUCCESS => {},
                .AGAIN, .INTR => return,
                else => |e| return w.fail(i, stats_mod.classify(e, false), e),
            }
            if (rc == 0) return w.fail(i, .eof, .SUCCESS);
            // Completion time of whatever this read finishes: taken right after the read returns.
            const t = net.nowNs();
            const before = s.recvd / w.size;
            s.recvd += rc;
            if (w.inWindow(t)) w.stats.bytes_recv += rc;
            if (s.recvd > s.sent) {
                // An echo can never return more than was sent: the path is not a faithful echo.
                w.stats.other_unexpected_data += 1;
                return w.fail(i, .other, .SUCCESS);
            }
            s.deadline = t + @as(u64, w.cfg.timeout_ms) * ns_per_ms;
            const done = s.recvd / w.size;
            if (done == before) return;
            switch (w.cfg.command) {
                .rr => {
                    var k = before;
                    while (k < done) : (k += 1) {
                        if (w.inWindow(t)) {
                            w.stats.hist.record(t - w.ts[i * w.cfg.pipeline + k % w.cfg.pipeline]);
                            w.stats.requests += 1;
                        }
                        // Closed loop: each completion sends the next request.
                        if (t < w.stop_at) w.issue(i, t);
                    }
                    if (!w.flush(i)) return;
                    w.setInterest(i, EPOLL.IN | w.outIfPending(s));
                },
                .rate => {
                    if (w.inWindow(t)) {
                        w.stats.hist.record(t - s.t_start);
                        w.stats.requests += 1;
                    }
                    w.closeSlot(i);
                    w.pushFree(i);
                },
                .hold => {
                    // Proven end to end: record setup latency, then sit idle watching for a drop.
                    w.stats.hist.record(t - s.t_start);
                    w.stats.requests += 1;
                    w.stats.held += 1;
                    _ = w.shared.held.fetchAdd(1, .monotonic);
                    w.doneOpening(s);
                    w.setup_left -= 1;
                    s.state = .holding;
                    s.deadline = 0;
                    w.setInterest(i, EPOLL.IN | EPOLL.RDHUP);
                },
                .bulk, .serve, .relay => unreachable,
            }
        }
    }

    /// A held connection should stay silent; any event means the far side closed it or misbehaved.
    fn onHeld(w: *Worker, i: u32) void {
        const s = &w.slots[i];
        const rc = linux.read(s.fd, w.scratch.ptr, w.scratch.len);
        switch (net.errno(rc)) {
            .SUCCESS => if (rc == 0) w.fail(i, .eof, .SUCCESS) else {
                w.stats.other_unexpected_data += 1;
                w.fail(i, .other, .SUCCESS);
            },
            .AGAIN, .INTR => {},
            else => |e| w.fail(i, stats_mod.classify(e, false), e),
        }
    }

    fn onStream(w: *Worker, i: u32, ev: u32) void {
        const s = &w.slots[i];
        const counting = w.inWindow(w.now);
        if (w.cfg.direction == .up and ev & EPOLL.OUT != 0) {
            var k: usize = 0;
            while (k < bulk_ops_per_event) : (k += 1) {
                const rc = linux.write(s.fd, w.payload.ptr, w.payload.len);
                switch (net.errno(rc)) {
                    .SUCCESS => {
                        if (counting) w.stats.bytes_sent += rc;
                        s.deadline = w.now + @as(u64, w.cfg.timeout_ms) * ns_per_ms;
                        if (rc < w.payload.len) break; // socket buffer full
                    },
                    .INTR => {},
                    .AGAIN => break,
                    else => |e| return w.fail(i, stats_mod.classify(e, false), e),
                }
            }
        }
        if (ev & (EPOLL.IN | EPOLL.ERR | EPOLL.HUP) != 0) {
            const ops: usize = if (w.cfg.direction == .down) bulk_ops_per_event else 1;
            var k: usize = 0;
            while (k < ops) : (k += 1) {
                const rc = linux.read(s.fd, w.scratch.ptr, @min(w.scratch.len, w.payload.len));
                switch (net.errno(rc)) {
                    .SUCCESS => {
                        if (rc == 0) return w.fail(i, .eof, .SUCCESS);
                        if (counting) w.stats.bytes_recv += rc;
                        s.deadline = w.now + @as(u64, w.cfg.timeout_ms) * ns_per_ms;
                    },
                    .INTR => {},
                    .AGAIN => break,
                    else => |e| return w.fail(i, stats_mod.classify(e, false), e),
                }
            }
        }
    }

    fn closeSlot(w: *Worker, i: u32) void {
        const s = &w.slots[i];
        if (s.fd >= 0) net.close(s.fd); // close() also removes it from epoll
        s.fd = -1;
        s.state = .idle;
        s.interest = 0;
    }

    /// Count the error, close the connection and decide what the slot does next.
    fn fail(w: *Worker, i: u32, kind: ErrorKind, e: net.E) void {
        const s = &w.slots[i];
        w.stats.addError(kind, e);
        if (s.state == .holding) {
            w.stats.dropped += 1;
            _ = w.shared.held.fetchSub(1, .monotonic);
        }
        const was_opening = s.opening;
        w.doneOpening(s);
        w.closeSlot(i);
        switch (w.cfg.command) {
            .rr, .bulk => {
                s.state = .waiting;
                s.deadline = w.now + retry_delay_ns;
            },
            .rate => w.pushFree(i),
            .hold => {
                // A hold slot gets one attempt: the report says how many were held, not retried.
                s.state = .dead;
                if (was_opening) w.setup_left -= 1;
            },
            .serve, .relay => unreachable,
        }
    }

    fn sweep(w: *Worker) void {
        for (w.slots, 0..) |*s, idx| {
            const i: u32 = @intCast(idx);
            if (s.deadline == 0 or w.now < s.deadline) continue;
            switch (s.state) {
                .waiting => {
                    s.state = .idle;
                    s.deadline = 0;
                    w.pushFree(i);
                },
                .connecting => w.fail(i, .connect_timeout, .TIMEDOUT),
                .exchanging, .streaming => w.fail(i, .timeout, .TIMEDOUT),
                else => {},
            }
        }
    }
};

fn workerMain(w: *Worker) void {
    w.run();
}

/// Run a client mode to completion and print its report. Returns the process exit code.
pub fn run(cfg: *const Config, nofile: u64) u8 {
    const limit = args.maxConnections(nofile);
    if (cfg.connections > limit) {
        net.print(2, "loadgen: --connections {d} is more than one process can hold here: the open-file limit is {d}, " ++
            "so at most {d} connections per process ({d} descriptors kept in reserve). " ++
            "Spread the load over several loadgen processes.\n", .{ cfg.connections, nofile, limit, args.fd_reserve });
        return 2;
    }
    const cpus: u32 = @intCast(std.Thread.getCpuCount() catch 1);
    const nthreads: u32 = @min(if (cfg.threads == 0) cpus else cfg.threads, cfg.connections);

    const gpa = std.heap.smp_allocator;
    const t0 = net.nowNs();
    const warm_end = t0 + @as(u64, @intFromFloat(cfg.warmup_s * std.time.ns_per_s));
    const dur_ns: u64 = @intFromFloat(cfg.duration_s * std.time.ns_per_s);
    var shared: Shared = .{
        .warm_end = warm_end,
        .stop_at = .init(if (cfg.command == .hold) std.math.maxInt(u64) else warm_end + dur_ns),
    };

    const workers = gpa.alloc(Worker, nthreads) catch return oom();
    defer gpa.free(workers);
    for (workers, 0..) |*w, t| {
        // Spread connections evenly; the first (connections % threads) threads take one more.
        const n = cfg.connections / nthreads + @intFromBool(t < cfg.connections % nthreads);
        w.init(cfg, &shared, n, nthreads) catch return oom();
    }
    defer for (workers) |*w| w.deinit();
    const threads = gpa.alloc(std.Thread, nthreads) catch return oom();
    defer gpa.free(threads);
    for (threads, workers) |*th, *w| {
        th.* = std.Thread.spawn(.{ .stack_size = 1 << 20 }, workerMain, .{w}) catch {
            net.print(2, "loadgen: cannot start a thread\n", .{});
            linux.exit_group(1);
        };
    }

    // Supervise: turn a signal into an earlier stop, and in hold announce when all are established.
    var hold_start: u64 = 0;
    var announced = false;
    while (shared.finished.load(.acquire) < nthreads) {
        net.sleepNs(2 * ns_per_ms);
        const now = net.nowNs();
        if (net.signalled.load(.acquire)) {
            if (shared.stop_at.load(.acquire) > now) shared.stop_at.store(now, .release);
        }
        if (cfg.command == .hold and !announced and shared.setup_done.load(.acquire) == nthreads) {
            announced = true;
            hold_start = now;
            const held = shared.held.load(.acquire);
            net.print(1, "HOLDING {d}\n", .{held});
            if (held < cfg.connections)
                net.print(2, "loadgen: only {d} of {d} connections were established and verified\n", .{ held, cfg.connections });
            if (!net.signalled.load(.acquire))
                shared.stop_at.store(if (dur_ns == 0) std.math.maxInt(u64) else now + dur_ns, .release);
        }
    }
    for (threads) |th| th.join();

    const total = gpa.create(Stats) catch return oom();
    defer gpa.destroy(total);
    total.* = .{};
    for (workers) |*w| total.merge(&w.stats);

    const stop_at = shared.stop_at.load(.acquire);
    const end = @min(stop_at, net.nowNs());
    const measured_ns: u64 = switch (cfg.command) {
        .hold => if (announced) end -| hold_start else 0,
        else => end -| warm_end,
    };
    const result: report.Result = .{
        .cfg = cfg,
        .threads = nthreads,
        .duration_s = @as(f64, @floatFromInt(measured_ns)) / std.time.ns_per_s,
        .setup_s = if (announced) @as(f64, @floatFromInt(hold_start - t0)) / std.time.ns_per_s else 0,
        .stats = total,
    };
    report.print(&result);
    return if (total.errorTotal() == 0) 0 else 1;
}

fn oom() u8 {
    net.print(2, "loadgen: out of memory\n", .{});
    return 1;
}
