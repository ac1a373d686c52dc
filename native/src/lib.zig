//! libswitchyard: what only the kernel does fast, behind a narrow C ABI (plain integers in, integers out).
//! Every function returns >= 0 on success and -errno on failure, so JS never reads errno itself.
//! Built so far: the ABI handshake, the splice relay engine (splice.zig), the sockmap relay engine
//! (sockmap.zig, its BPF program in native/bpf/), the uring relay engine (uring.zig), peek (peek.zig)
//! and the CPU sampler (cpu.zig).
const std = @import("std");
const linux = std.os.linux;
const splice = @import("splice.zig");
const listen = @import("listen.zig");
const limits = @import("limits.zig");
const sockmap = @import("sockmap.zig");
const uring = @import("uring.zig");
const uring_accept = @import("uring_accept.zig");
const completion = @import("completion.zig");
const peek_mod = @import("peek.zig");
const cpu = @import("cpu.zig");
const sys = @import("sys.zig");

/// Bumped whenever an exported signature changes; src/native/ refuses a library of another version.
pub const ABI_VERSION: c_int = 5;

export fn sy_abi_version() c_int {
    return ABI_VERSION;
}

// ---- splice relay engine: one per process --------------------------------------------------------

var engine: ?*splice.Engine = null;
var engine_error: c_int = 0;

/// Start the engine with `threads` worker threads and pipes of `pipe_size` bytes (0: 1 MiB, capped by
/// /proc/sys/fs/pipe-max-size). Idempotent. 0, or -errno.
export fn sy_splice_start(threads: c_int, pipe_size: c_int) c_int {
    if (engine != null) return 0;
    const p = probe();
    if (p < 0) return p;
    engine = splice.Engine.create(std.heap.c_allocator, @intCast(@max(threads, 1)), @intCast(@max(pipe_size, 0))) catch |e| {
        return -@as(c_int, switch (e) {
            error.OutOfMemory => @intFromEnum(linux.E.NOMEM),
            else => @intFromEnum(linux.E.AGAIN),
        });
    };
    return 0;
}

/// Hand over two connected sockets. idle_ms 0 = no idle timeout. 0, or -errno (then nothing was
/// taken over and the caller still relays them itself).
///
/// Ownership: the engine dup()s both fds and works only on its duplicates; the caller keeps owning
/// its own fds and closes them whenever it likes (normally after the completion record, with
/// end()/terminate()). The engine removes its duplicates from its epoll and closes them before it
/// queues the record, and never touches the caller's fds. The dup (2 fds per pair) stays on purpose:
/// Bun close()s a paused socket's fd by itself when a peer's RST arrives (EPOLLERR), before the
/// record exists; an engine working on the bare number could then splice into whatever connection
/// Bun opens next on that number. Pipes are not per pair: a direction borrows one from its thread's
/// pool only while it has bytes to move, so an idle pair costs the engine exactly its 2 dups.
export fn sy_splice_add(fd_a: c_int, fd_b: c_int, idle_ms: c_int, id: i64) c_int {
    const e = engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return e.add(fd_a, fd_b, idle_ms, @bitCast(id));
}

/// Copy up to `max` completion records (32 bytes each: id, a->b, b->a as u64; reason, errno as u32).
export fn sy_splice_poll(buf: [*]splice.Record, max: c_int) c_int {
    const e = engine orelse return 0;
    return @intCast(e.poll(buf[0..@intCast(@max(max, 0))]));
}

/// Pairs handed over and not completed yet.
export fn sy_splice_active() c_int {
    const e = engine orelse return 0;
    return e.activeCount();
}

/// Pipes of the engine: `spare` 0 = held by pairs' directions now (bytes in flight), 1 = empty ones
/// kept for reuse in the threads' pools. Diagnostics; not bound by src/native (no ABI change).
export fn sy_splice_pipes(spare: c_int) c_int {
    const e = engine orelse return 0;
    return if (spare != 0) e.pipesSpare() else e.pipesInUse();
}

/// 0 if socket -> pipe -> socket splicing works on this host, else -errno.
export fn sy_splice_probe() c_int {
    return probe();
}

fn probe() c_int {
    return splice.probe();
}

// ---- listening sockets and unix datagrams for the process model (listen.zig) ------------------------

export fn sy_listen_inet(ip: [*]const u8, family: c_int, port: c_int, backlog: c_int, flags: u32) c_int {
    return listen.listenInet(ip, family, port, backlog, flags);
}

export fn sy_listen_unix(path: [*]const u8, len: c_int, backlog: c_int) c_int {
    return listen.listenUnix(path, len, backlog);
}

/// Listen again with `backlog` (Bun.listen({fd}) re-listens with 511). 0 or -errno.
export fn sy_listen_backlog(fd: c_int, backlog: c_int) c_int {
    return listen.setBacklog(fd, backlog);
}

export fn sy_dup(fd: c_int) c_int {
    return listen.dupFd(fd);
}

export fn sy_local_port(fd: c_int) c_int {
    return listen.localPort(fd);
}

export fn sy_is_listening(fd: c_int) c_int {
    return listen.isListeningSocket(fd);
}

export fn sy_send_datagram(path: [*]const u8, path_len: c_int, msg: [*]const u8, msg_len: c_int) c_int {
    return listen.sendDatagram(path, path_len, msg, msg_len);
}

export fn sy_monotonic_usec() i64 {
    return listen.monotonicUsec();
}

export fn sy_close(fd: c_int) c_int {
    const rc = linux.close(fd);
    return if (linux.errno(rc) == .SUCCESS) 0 else -@as(c_int, @intCast(@intFromEnum(linux.errno(rc))));
}

/// Make the next close of `fd` send RST (SO_LINGER 0): a connection the proxy cuts mid-stream must
/// not end with a FIN its peer would take for a complete transfer.
export fn sy_linger_zero(fd: c_int) c_int {
    sys.setLingerZero(fd);
    return 0;
}

// ---- the gate's shared limits table (limits.zig) --------------------------------------------------

var limits_table: ?limits.Table = null;

/// A new shared table (memfd). fd or -errno. The supervisor makes it and hands it to every worker.
export fn sy_limits_create() c_int {
    return limits.create();
}

/// Map the table behind `fd` in this process, counting open connections in `column`. 0 or -errno.
export fn sy_limits_attach(fd: c_int, column: c_int) c_int {
    const slots = limits.map(fd) orelse return -@as(c_int, @intFromEnum(linux.E.NOMEM));
    limits_table = .{ .slots = slots, .column = limitsColumn(column) };
    return 0;
}

/// The supervisor, when the worker that counted in `column` has exited: forget what it left counted.
/// Maps the table for the call only (the supervisor counts nothing itself). 0 or -errno.
export fn sy_limits_clear_column(fd: c_int, column: c_int) c_int {
    const slots = limits.map(fd) orelse return -@as(c_int, @intFromEnum(linux.E.NOMEM));
    defer limits.unmap(slots);
    limits.clearColumn(slots, limitsColumn(column));
    return 0;
}

fn limitsColumn(column: c_int) u32 {
    return @as(u32, @intCast(@max(column, 0))) % limits.COLUMNS;
}

/// 0 admitted, 1 rate limited, 2 concurrency limited, 3 busy (admitted), 4 table full (admitted),
/// -ENOTCONN without a table.
export fn sy_limits_take(h1: u32, h2: u32, rate: u32, burst: u32, max_conc: u32, count: c_int) c_int {
    if (limits_table) |*t| return @intFromEnum(t.take(h1, h2, rate, burst, max_conc, count != 0, limits.nowNs()));
    return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
}

export fn sy_limits_release(h1: u32, h2: u32) void {
    if (limits_table) |*t| t.release(h1, h2);
}

export fn sy_limits_open(h1: u32, h2: u32) c_int {
    if (limits_table) |*t| return @intCast(@min(t.open(h1, h2), std.math.maxInt(c_int)));
    return 0;
}

// ---- sockmap relay engine: one per process (native/src/sockmap.zig) ------------------------------

var sm_engine: ?*sockmap.Engine = null;

/// Create the maps, load and attach the verdict program, start the engine's thread. Idempotent.
/// 0, or -errno of the refusal (EPERM: no CAP_BPF/CAP_NET_ADMIN; EINVAL: a kernel without it).
export fn sy_sockmap_start() c_int {
    if (sm_engine != null) return 0;
    sm_engine = sockmap.Engine.create(std.heap.c_allocator) catch |e| return switch (e) {
        error.Refused => sockmap.Engine.last_error,
        error.OutOfMemory => -@as(c_int, @intFromEnum(linux.E.NOMEM)),
        else => -@as(c_int, @intFromEnum(linux.E.AGAIN)),
    };
    return 0;
}

/// 0 if the sockmap relay can run here (maps, program and attach all accepted), else -errno.
export fn sy_sockmap_probe() c_int {
    return sockmap.probe(std.heap.c_allocator);
}

/// Hand over two connected TCP sockets; the caller must have written every byte it read from one
/// to the other first. Ownership as sy_splice_add (the engine works on its own dups). 0, or -errno
/// and nothing was taken over (EPROTONOSUPPORT: not TCP; EOPNOTSUPP: no longer ESTABLISHED).
export fn sy_sockmap_add(fd_a: c_int, fd_b: c_int, idle_ms: c_int, id: i64) c_int {
    const e = sm_engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return e.add(fd_a, fd_b, idle_ms, @bitCast(id));
}

/// Completion records, the same 32-byte shape as sy_splice_poll's.
export fn sy_sockmap_poll(buf: [*]completion.Record, max: c_int) c_int {
    const e = sm_engine orelse return 0;
    return @intCast(e.poll(buf[0..@intCast(@max(max, 0))]));
}

export fn sy_sockmap_active() c_int {
    const e = sm_engine orelse return 0;
    return e.activeCount();
}

// ---- uring relay engine: one ring per process (native/src/uring.zig; bound by src/native/uring.ts) ----

var uring_engine: ?*uring.Engine = null;

/// 0 if this kernel can run the uring engine, else -errno; sy_uring_probe_step() then names the
/// step that failed (uring.ProbeStep: 1 setup, 2 features, 3 opcodes, 4 buffer ring, 5 multishot recv).
export fn sy_uring_probe() c_int {
    return uring.probe();
}

export fn sy_uring_probe_step() c_int {
    return @intFromEnum(uring.probe_step);
}

/// Start the engine's ring and thread. Idempotent. 0, or -errno.
export fn sy_uring_start() c_int {
    if (uring_engine != null) return 0;
    // create() probes the kernel first and says why it refused.
    uring_engine = uring.Engine.create(std.heap.c_allocator, .{ .handoff = spliceAdopt }) catch |e| return switch (e) {
        error.Refused => uring.Engine.last_error,
        error.OutOfMemory => -@as(c_int, @intFromEnum(linux.E.NOMEM)),
        else => -@as(c_int, @intFromEnum(linux.E.AGAIN)),
    };
    return 0;
}

/// Hand over two connected sockets; ownership as sy_splice_add (the engine works on its own dups).
/// 0, or -errno and nothing was taken over.
export fn sy_uring_add(fd_a: c_int, fd_b: c_int, idle_ms: c_int, id: i64) c_int {
    const e = uring_engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return e.add(fd_a, fd_b, idle_ms, @bitCast(id));
}

/// The uring engine's streams go to the splice engine (uring.zig, "Streams"): the splice engine
/// takes the uring engine's own fds and the byte counts so far, and its record ends the connection.
fn spliceAdopt(fd_a: i32, fd_b: i32, idle_ms: i64, id: u64, a_to_b: u64, b_to_a: u64) c_int {
    const e = engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return e.adopt(fd_a, fd_b, idle_ms, id, a_to_b, b_to_a);
}

/// relay auto: hand the uring engine's streams to splice from now on (1), or not (0). Both engines
/// must have started (splice first). 0, or -ENOTCONN.
export fn sy_uring_streams_to_splice(on: c_int) c_int {
    const e = uring_engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    if (on != 0 and engine == null) return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    _ = e.streamsToSplice(on != 0);
    return 0;
}

/// Streams the uring engine has handed to splice.
export fn sy_uring_streams_handed() i64 {
    const e = uring_engine orelse return 0;
    return @bitCast(e.handedOff());
}

/// Completion records, the same 32-byte shape as sy_splice_poll's.
export fn sy_uring_poll(buf: [*]completion.Record, max: c_int) c_int {
    const e = uring_engine orelse return 0;
    return @intCast(e.poll(buf[0..@intCast(@max(max, 0))]));
}

export fn sy_uring_active() c_int {
    const e = uring_engine orelse return 0;
    return e.activeCount();
}

// ---- uring native accept (native/src/uring.zig, "native accept"; bound by src/native/uring-accept.ts) ----

/// The bell JS reads (a pipe: a byte when events wait), or -ENOTCONN before sy_uring_start.
export fn sy_uring_bell() c_int {
    const e = uring_engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return e.bellFd();
}

/// Accept on listening socket `fd` as listener `id` (the engine dups it). 0, or -errno.
export fn sy_uring_listen(fd: c_int, id: u32) c_int {
    const e = uring_engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return e.listen(fd, id);
}

export fn sy_uring_unlisten(id: u32) c_int {
    const e = uring_engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return e.unlisten(id);
}

/// Copy up to `max` events (40 bytes each, uring_accept.Event); fewer than `max` re-arms the bell.
export fn sy_uring_events(buf: [*]uring.Event, max: c_int) c_int {
    const e = uring_engine orelse return 0;
    return @intCast(e.pollEvents(buf[0..@intCast(@max(max, 0))]));
}

/// Dial for accepted `token`: family 4/6 (`addr` 4 or 16 network-order bytes) or 1 (`addr` a unix
/// path of `addr_len` bytes), `port` host order, connect timeout and idle timeout in ms (0: none).
/// The record of `conn_id` comes whatever happens. 0, or -errno (EINVAL: a bad address).
export fn sy_uring_connect(token: i64, conn_id: i64, family: c_int, addr: [*]const u8, addr_len: c_int, port: c_int, timeout_ms: c_int, idle_ms: c_int) c_int {
    const e = uring_engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    const cmd = uring_accept.Command.dial(@bitCast(token), @bitCast(conn_id), family, addr[0..@intCast(@max(addr_len, 0))], @intCast(port & 0xffff), @intCast(@max(timeout_ms, 0)), @max(idle_ms, 0)) orelse
        return -@as(c_int, @intFromEnum(linux.E.INVAL));
    return e.connect(cmd);
}

/// Close accepted `token` without dialling (FIN; RST with `reset` != 0). No record.
export fn sy_uring_refuse(token: i64, reset: c_int) c_int {
    const e = uring_engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return e.refuse(@bitCast(token), reset != 0);
}

/// Reset both sides of accepted `token` (its record, if a dial was asked for, says `shutdown`).
export fn sy_uring_kill(token: i64) c_int {
    const e = uring_engine orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return e.kill(@bitCast(token));
}

// ---- peek (native/src/peek.zig) ---------------------------------------------------------------

/// Up to `len` waiting bytes of socket `fd` copied into `buf`, left unread: the count (0: the
/// peer closed), or -errno (-EAGAIN: nothing yet).
export fn sy_peek(fd: c_int, buf: [*]u8, len: c_int) c_int {
    return peek_mod.peek(fd, buf[0..@intCast(@max(len, 0))]);
}

// ---- CPU sampler (native/src/cpu.zig) -------------------------------------------------------------

var sampler: cpu.Sampler = .{};

/// Sample (pid, tid) every 250 ms from now on. 0, or -errno (ENOSPC: 1024 already watched).
export fn sy_cpu_watch(pid: c_int, tid: c_int) c_int {
    return sampler.watch(pid, tid);
}

export fn sy_cpu_unwatch(pid: c_int, tid: c_int) c_int {
    sampler.unwatch(pid, tid);
    return 0;
}

/// Share of one core over the last sample period, in permille (may exceed 1000 never: one thread);
/// -EAGAIN before the second sample, -ESRCH once the thread is gone, -ENOENT if not watched.
export fn sy_cpu_permille(pid: c_int, tid: c_int) c_int {
    return sampler.permille(pid, tid);
}

// ---- waiting on peeked sockets (native/src/peek_wait.zig; bound by src/native/peek-wait.ts) ----------

const peek_wait = @import("peek_wait.zig");
var waiter: ?peek_wait.Waiter = null;

/// Start the waiter once (an epoll set for paused sockets JS peeks at, and its bell thread): the fd
/// of the bell pipe JS reads, or -errno.
export fn sy_peekwait_start() c_int {
    if (waiter) |w| return w.bell_read;
    switch (peek_wait.Waiter.start()) {
        .ok => |w| {
            waiter = w;
            return w.bell_read;
        },
        .err => |e| return e,
    }
}

/// Report socket `fd` under `token` when new bytes, its FIN or a reset arrive (edge-triggered). 0 or -errno.
export fn sy_peekwait_add(fd: c_int, token: u32) c_int {
    const w = waiter orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return w.add(fd, token);
}

export fn sy_peekwait_remove(fd: c_int) c_int {
    const w = waiter orelse return -@as(c_int, @intFromEnum(linux.E.NOTCONN));
    return w.remove(fd);
}

/// Up to `max` notices (token, ARRIVED 1 | ENDED 2), two u32 each, never waiting; fewer than `max`
/// re-arms the bell. The count, or -errno.
export fn sy_peekwait_poll(out: [*]u32, max: c_int) c_int {
    const w = waiter orelse return 0;
    return w.poll(out[0 .. 2 * @as(usize, @intCast(@max(max, 0)))]);
}

/// Throw away what is queued on `fd` (so its close sends FIN, not RST): the count, or -errno.
export fn sy_peekwait_discard(fd: c_int) c_int {
    return peek_wait.discard(fd);
}

test "abi version is positive" {
    try std.testing.expect(sy_abi_version() > 0);
}

test "exported splice engine starts once and polls empty" {
    try std.testing.expectEqual(@as(c_int, 0), sy_splice_start(1, 0));
    try std.testing.expectEqual(@as(c_int, 0), sy_splice_start(1, 0));
    var recs: [4]splice.Record = undefined;
    try std.testing.expectEqual(@as(c_int, 0), sy_splice_poll(&recs, 4));
    try std.testing.expectEqual(@as(c_int, 0), sy_splice_active());
    try std.testing.expectEqual(@as(c_int, 0), sy_splice_pipes(0));
    try std.testing.expectEqual(@as(c_int, 0), sy_splice_pipes(1));
    try std.testing.expect(sy_splice_add(-1, -1, 0, 1) < 0);
}

test "exported uring engine starts once, polls empty and refuses bad fds" {
    if (sy_uring_probe() != 0) return error.SkipZigTest;
    try std.testing.expectEqual(@as(c_int, 0), sy_uring_probe_step());
    try std.testing.expectEqual(@as(c_int, 0), sy_uring_start());
    try std.testing.expectEqual(@as(c_int, 0), sy_uring_start());
    var recs: [4]completion.Record = undefined;
    try std.testing.expectEqual(@as(c_int, 0), sy_uring_poll(&recs, 4));
    try std.testing.expectEqual(@as(c_int, 0), sy_uring_active());
    try std.testing.expect(sy_uring_add(-1, -1, 0, 1) < 0);
}

test {
    _ = splice;
    _ = listen;
    _ = limits;
    _ = sockmap;
    _ = uring;
    _ = uring_accept;
    _ = completion;
    _ = @import("sys.zig");
    _ = @import("bpf.zig");
    _ = peek_mod;
    _ = cpu;
    _ = peek_wait;
}
