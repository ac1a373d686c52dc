//! Waiting on sockets that JS has paused and peeks at (src/proxy/hello-peek.ts): the ClientHello stays
//! in the kernel while it is read with MSG_PEEK, so JS needs two things Bun cannot give it for a paused
//! socket:
//! - a notice when NEW bytes arrive. The sockets sit in an edge-triggered epoll set (`inner`), so one
//!   whose peeked bytes are still queued is not reported again until more bytes, its FIN or a reset
//!   come. A bell thread waits on `outer`, which holds `inner` one-shot, and rings a pipe that Bun reads
//!   like any stream; JS then drains `inner` without waiting, which re-arms `outer`. So nothing runs
//!   while nothing arrives: no timer (a Bun timer tick costs ~45 µs of CPU, measured: 4% of a core at
//!   1 ms), and a notice reaches JS in about 0.1 ms.
//! - on a refusal, discarding what is queued, so that closing the socket sends FIN as a refusal after a
//!   read would, not the RST the kernel sends for a socket closed with unread bytes.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("sys.zig");

/// Bits of the `events` word of each notice.
pub const ARRIVED: u32 = 1; // new bytes
pub const ENDED: u32 = 2; // FIN, reset or error: peeking again tells which

pub const Waiter = struct {
    /// The peeked sockets, edge-triggered.
    inner: i32,
    /// Holds `inner`, one-shot: the bell thread's wait.
    outer: i32,
    /// A pipe: the bell thread writes a byte when `inner` has notices; JS reads `bell_read`.
    bell_read: i32,
    bell_write: i32,

    /// The sets, the pipe and the bell thread (which runs for the life of the process). -errno on failure.
    pub fn start() union(enum) { ok: Waiter, err: c_int } {
        var w: Waiter = .{ .inner = -1, .outer = -1, .bell_read = -1, .bell_write = -1 };
        const made = w.make();
        if (made < 0) {
            w.close();
            return .{ .err = made };
        }
        _ = std.Thread.spawn(.{}, ring, .{ w.outer, w.bell_write }) catch {
            w.close();
            return .{ .err = sys.errnoInt(.AGAIN) };
        };
        return .{ .ok = w };
    }

    fn make(w: *Waiter) c_int {
        var rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
        if (linux.errno(rc) != .SUCCESS) return sys.negErrno(rc);
        w.inner = @intCast(rc);
        rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
        if (linux.errno(rc) != .SUCCESS) return sys.negErrno(rc);
        w.outer = @intCast(rc);
        var pfd: [2]i32 = undefined;
        rc = linux.pipe2(&pfd, .{ .NONBLOCK = true, .CLOEXEC = true });
        if (linux.errno(rc) != .SUCCESS) return sys.negErrno(rc);
        w.bell_read = pfd[0];
        w.bell_write = pfd[1];
        var ev = linux.epoll_event{ .events = linux.EPOLL.IN | linux.EPOLL.ONESHOT, .data = .{ .u64 = 0 } };
        rc = linux.epoll_ctl(w.outer, linux.EPOLL.CTL_ADD, w.inner, &ev);
        return if (linux.errno(rc) == .SUCCESS) 0 else sys.negErrno(rc);
    }

    fn close(w: *Waiter) void {
        sys.closeFd(w.inner);
        sys.closeFd(w.outer);
        sys.closeFd(w.bell_read);
        sys.closeFd(w.bell_write);
    }

    /// Report `fd` under `token` when bytes arrive. If bytes are already queued, it is reported once
    /// (EPOLL_CTL_ADD checks readiness), so nothing that arrived before the call is missed.
    pub fn add(w: Waiter, fd: i32, token: u32) c_int {
        var ev = linux.epoll_event{ .events = linux.EPOLL.IN | linux.EPOLL.RDHUP | linux.EPOLL.ET, .data = .{ .u64 = token } };
        const rc = linux.epoll_ctl(w.inner, linux.EPOLL.CTL_ADD, fd, &ev);
        return if (linux.errno(rc) == .SUCCESS) 0 else sys.negErrno(rc);
    }

    /// Stop reporting `fd` (a closed fd has left the set by itself: -EBADF/-ENOENT then, harmless).
    pub fn remove(w: Waiter, fd: i32) c_int {
        const rc = linux.epoll_ctl(w.inner, linux.EPOLL.CTL_DEL, fd, null);
        return if (linux.errno(rc) == .SUCCESS) 0 else sys.negErrno(rc);
    }

    /// Notices since the last call, without waiting: out[2i] = token, out[2i+1] = ARRIVED | ENDED bits.
    /// Returns how many (at most out.len / 2), or -errno. Fewer than asked means `inner` is empty: the
    /// bell is re-armed (bytes that arrive from here on ring it again).
    pub fn poll(w: Waiter, out: []u32) c_int {
        var events: [64]linux.epoll_event = undefined;
        const max: usize = @min(events.len, out.len / 2);
        const rc = while (true) {
            const r = linux.epoll_wait(w.inner, &events, @intCast(max), 0);
            if (linux.errno(r) != .INTR) break r;
        };
        if (linux.errno(rc) != .SUCCESS) return sys.negErrno(rc);
        for (events[0..rc], 0..) |ev, i| {
            out[2 * i] = @truncate(ev.data.u64);
            const ended = ev.events & (linux.EPOLL.RDHUP | linux.EPOLL.HUP | linux.EPOLL.ERR) != 0;
            out[2 * i + 1] = (if (ev.events & linux.EPOLL.IN != 0) ARRIVED else 0) | (if (ended) ENDED else 0);
        }
        if (rc < max) {
            // Take the rings already made, then re-arm: a notice that came meanwhile rings at once.
            var sink: [64]u8 = undefined;
            while (linux.errno(linux.read(w.bell_read, &sink, sink.len)) == .SUCCESS) {}
            var ev = linux.epoll_event{ .events = linux.EPOLL.IN | linux.EPOLL.ONESHOT, .data = .{ .u64 = 0 } };
            _ = linux.epoll_ctl(w.outer, linux.EPOLL.CTL_MOD, w.inner, &ev);
        }
        return @intCast(rc);
    }
};

/// The bell thread: one byte into the pipe each time `inner` gets notices (one-shot: then it waits for
/// JS to drain and re-arm). A full pipe already holds rings enough.
fn ring(outer: i32, bell_write: i32) void {
    var ev: [1]linux.epoll_event = undefined;
    while (true) {
        const rc = linux.epoll_wait(outer, &ev, 1, -1);
        if (linux.errno(rc) == .SUCCESS and rc == 1) _ = linux.write(bell_write, "!", 1);
    }
}

/// Bytes one discard() throws away at most: far above what a peeked socket holds (16 KiB of hello and
/// a few segments more), so a client that keeps sending cannot hold the caller in a loop.
const DISCARD_MAX: usize = 1 << 20;

/// Read and throw away what is queued on `fd`, never waiting. On TCP, MSG_TRUNC drops the bytes
/// without copying them; on a unix socket they are copied into a scratch buffer. The count, or -errno.
pub fn discard(fd: i32) c_int {
    var scratch: [16 * 1024]u8 = undefined;
    var total: usize = 0;
    while (total < DISCARD_MAX) {
        const rc = linux.recvfrom(fd, &scratch, scratch.len, linux.MSG.TRUNC | linux.MSG.DONTWAIT, null, null);
        switch (linux.errno(rc)) {
            .SUCCESS => if (rc == 0) break else {
                total += rc;
            },
            .INTR => continue,
            .AGAIN => break,
            else => return if (total > 0) @intCast(total) else sys.negErrno(rc),
        }
    }
    return @intCast(total);
}

const testing = std.testing;
const rig = @import("test_rig.zig");

fn started() !Waiter {
    return switch (Waiter.start()) {
        .ok => |w| w,
        .err => error.NoWaiter,
    };
}

fn bellRang(w: Waiter) bool {
    var pfd = [1]linux.pollfd{.{ .fd = w.bell_read, .events = linux.POLL.IN, .revents = 0 }};
    return linux.poll(&pfd, 1, 1000) == 1;
}

fn pollOne(w: Waiter) ![2]u32 {
    try testing.expect(bellRang(w));
    var out: [8]u32 = undefined;
    try testing.expectEqual(@as(c_int, 1), w.poll(&out));
    return .{ out[0], out[1] };
}

fn quiet(w: Waiter) !void {
    var pfd = [1]linux.pollfd{.{ .fd = w.bell_read, .events = linux.POLL.IN, .revents = 0 }};
    try testing.expectEqual(@as(usize, 0), linux.poll(&pfd, 1, 20));
    var out: [8]u32 = undefined;
    try testing.expectEqual(@as(c_int, 0), w.poll(&out));
}

test "the bell rings per arrival, not while peeked bytes only sit in the queue; FIN is reported as ended" {
    const r = try rig.Rig.init();
    defer r.deinit();
    const w = try started();
    try testing.expectEqual(@as(c_int, 0), w.add(r.p1, 7));
    try quiet(w);
    try rig.writeAll(r.c, "\x16\x03\x01");
    try testing.expectEqual([2]u32{ 7, ARRIVED }, try pollOne(w));
    // The bytes are still queued (nobody read them), yet no second notice: edge-triggered.
    try quiet(w);
    try rig.writeAll(r.c, "\x00");
    try testing.expectEqual([2]u32{ 7, ARRIVED }, try pollOne(w));
    _ = linux.shutdown(r.c, linux.SHUT.WR);
    const fin = try pollOne(w);
    try testing.expectEqual(@as(u32, 7), fin[0]);
    try testing.expect(fin[1] & ENDED != 0);
    try testing.expectEqual(@as(c_int, 0), w.remove(r.p1));
    try testing.expect(w.remove(r.p1) < 0);
}

test "bytes queued before add are reported once" {
    const r = try rig.Rig.init();
    defer r.deinit();
    const w = try started();
    try rig.writeAll(r.c, "early");
    sys.sleepMs(5);
    try testing.expectEqual(@as(c_int, 0), w.add(r.p1, 3));
    try testing.expectEqual([2]u32{ 3, ARRIVED }, try pollOne(w));
    try quiet(w);
}

test "discard empties the queue, so close sends FIN (the peer reads end of stream), where unread bytes would send RST" {
    var outcome: [2]linux.E = undefined;
    for ([_]bool{ false, true }, 0..) |discarding, i| {
        const pair = try rig.tcpPair();
        defer sys.closeFd(pair.x);
        try rig.writeAll(pair.x, "a hello that is refused");
        sys.sleepMs(5);
        if (discarding) {
            try testing.expectEqual(@as(c_int, 23), discard(pair.y));
            try testing.expectEqual(@as(c_int, 0), discard(pair.y));
        }
        _ = linux.close(pair.y);
        sys.sleepMs(5);
        var buf: [8]u8 = undefined;
        const rc = linux.read(pair.x, &buf, buf.len);
        outcome[i] = linux.errno(rc);
        if (outcome[i] == .SUCCESS) try testing.expectEqual(@as(usize, 0), rc);
    }
    try testing.expectEqual(linux.E.CONNRESET, outcome[0]);
    try testing.expectEqual(linux.E.SUCCESS, outcome[1]);
    try testing.expectEqual(sys.errnoInt(.BADF), discard(-1));
}
