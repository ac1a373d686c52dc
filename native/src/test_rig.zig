//! Test helpers shared by the engines' tests (splice.zig, sockmap.zig): real loopback TCP
//! connections in the layout  client c <-> p1 (accepted) [engine relays p1 <-> p2] p2 (connected) <-> b backend.
const std = @import("std");
const linux = std.os.linux;
const testing = std.testing;
const sys = @import("sys.zig");
const closeFd = sys.closeFd;
const nowMs = sys.nowMs;
pub const sleepMs = sys.sleepMs;
const Record = @import("completion.zig").Record;
pub const Conn2 = struct { x: i32, y: i32 };



pub fn tcpPair() !Conn2 {
    const ls: i32 = @intCast(linux.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0));
    defer closeFd(ls);
    var addr = linux.sockaddr.in{ .port = 0, .addr = std.mem.nativeToBig(u32, 0x7f000001) };
    var len: linux.socklen_t = @sizeOf(linux.sockaddr.in);
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.bind(ls, @ptrCast(&addr), len)));
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.listen(ls, 4)));
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.getsockname(ls, @ptrCast(&addr), &len)));
    const c: i32 = @intCast(linux.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0));
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.connect(c, @ptrCast(&addr), len)));
    const rc = linux.accept4(ls, null, null, linux.SOCK.CLOEXEC);
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(rc));
    return .{ .x = c, .y = @intCast(rc) };
}

pub const Rig = struct {
    c: i32,
    p1: i32,
    p2: i32,
    b: i32,
    pub fn init() !Rig {
        const front = try tcpPair();
        const back = try tcpPair();
        return .{ .c = front.x, .p1 = front.y, .p2 = back.x, .b = back.y };
    }
    /// The peers' fds; p1/p2 stand for Bun's fds and are closed by the test after completion.
    pub fn deinit(self: Rig) void {
        closeFd(self.c);
        closeFd(self.p1);
        closeFd(self.p2);
        closeFd(self.b);
    }
};

pub fn waitRecord(e: anytype) !Record {
    var out: [1]Record = undefined;
    var i: usize = 0;
    while (i < 10_000) : (i += 1) {
        if (e.poll(&out) == 1) return out[0];
        const ts = linux.timespec{ .sec = 0, .nsec = 1_000_000 };
        _ = linux.nanosleep(&ts, null);
    }
    return error.NoCompletion;
}

pub fn writeAll(fd: i32, bytes: []const u8) !void {
    var off: usize = 0;
    while (off < bytes.len) {
        const rc = linux.write(fd, bytes[off..].ptr, bytes.len - off);
        if (linux.errno(rc) != .SUCCESS) return error.WriteFailed;
        off += rc;
    }
}

/// Read until EOF; returns (count, sum of bytes) or the errno.
pub fn readToEof(fd: i32) !struct { n: u64, sum: u64 } {
    var buf: [65536]u8 = undefined;
    var n: u64 = 0;
    var sum: u64 = 0;
    while (true) {
        const rc = linux.read(fd, &buf, buf.len);
        switch (linux.errno(rc)) {
            .SUCCESS => {},
            .CONNRESET => return error.ConnReset,
            else => return error.ReadFailed,
        }
        if (rc == 0) return .{ .n = n, .sum = sum };
        for (buf[0..rc]) |x| sum +%= x;
        n += rc;
    }
}

/// The byte writerThread puts at stream offset `o` (its 64 KiB buffer repeats).
pub fn patternAt(o: u64) u8 {
    return @truncate((o % 65536) *% 7);
}

pub const Verified = struct { n: u64, first_bad: ?u64, reset: bool };

/// Read until EOF (or a reset: `reset`), checking every byte against writerThread's pattern at its
/// offset (a sum would not see bytes that arrive in the wrong order). `first_bad` is the first
/// offset that differs.
pub fn readVerified(fd: i32) !Verified {
    var buf: [65536]u8 = undefined;
    var n: u64 = 0;
    var first_bad: ?u64 = null;
    while (true) {
        const rc = linux.read(fd, &buf, buf.len);
        switch (linux.errno(rc)) {
            .SUCCESS => {},
            .CONNRESET => return .{ .n = n, .first_bad = first_bad, .reset = true },
            else => return error.ReadFailed,
        }
        if (rc == 0) return .{ .n = n, .first_bad = first_bad, .reset = false };
        if (first_bad == null) {
            for (buf[0..rc], 0..) |x, i| if (x != patternAt(n + i)) {
                first_bad = n + i;
                break;
            };
        }
        n += rc;
    }
}

/// Writes `total` bytes of the test pattern (a 64 KiB buffer of i*7 repeated; see patternAt),
/// counting into `progress` if given, then FIN if `fin`. Stops quietly on a write error.
fn writePattern(fd: i32, total: usize, progress: ?*Progress, fin: bool) void {
    var buf: [65536]u8 = undefined;
    for (&buf, 0..) |*x, i| x.* = @truncate(i *% 7);
    var left = total;
    while (left > 0) {
        const k = @min(left, buf.len);
        writeAll(fd, buf[0..k]) catch return;
        left -= k;
        if (progress) |p| _ = p.sent.fetchAdd(k, .monotonic);
    }
    if (fin) _ = linux.shutdown(fd, linux.SHUT.WR);
}

pub fn writerThread(fd: i32, total: usize) void {
    writePattern(fd, total, null, true);
}

/// Open fds of this process (entries of /proc/self/fd, less the one used to list them).
pub fn countFds() !usize {
    const rc = linux.open("/proc/self/fd", .{ .DIRECTORY = true, .CLOEXEC = true }, 0);
    if (linux.errno(rc) != .SUCCESS) return error.OpenFailed;
    const dir: i32 = @intCast(rc);
    defer closeFd(dir);
    var buf: [8192]u8 align(8) = undefined;
    var n: usize = 0;
    while (true) {
        const got = linux.getdents64(dir, &buf, buf.len);
        if (linux.errno(got) != .SUCCESS) return error.ReadFailed;
        if (got == 0) break;
        var off: usize = 0;
        while (off < got) {
            const reclen = std.mem.readInt(u16, buf[off + 16 ..][0..2], .little);
            if (buf[off + 19] != '.') n += 1;
            off += reclen;
        }
    }
    return n - 1;
}

pub fn readExact(fd: i32, want: usize) !u64 {
    var buf: [65536]u8 = undefined;
    var got: usize = 0;
    var sum: u64 = 0;
    while (got < want) {
        const rc = linux.read(fd, &buf, @min(buf.len, want - got));
        if (linux.errno(rc) != .SUCCESS) return error.ReadFailed;
        if (rc == 0) return error.EarlyEof;
        for (buf[0..rc]) |x| sum +%= x;
        got += rc;
    }
    return sum;
}

pub fn setBuf(fd: i32, opt: u32, bytes: i32) void {
    _ = linux.setsockopt(fd, linux.SOL.SOCKET, opt, @ptrCast(&bytes), @sizeOf(i32));
}

/// Bytes a writer thread has written so far, for a test that watches it stall.
pub const Progress = struct {
    sent: std.atomic.Value(u64) = .init(0),
    pub fn get(self: *Progress) u64 {
        return self.sent.load(.monotonic);
    }
};

/// writerThread's bytes, counted into `progress` as they go; FIN at the end.
pub fn countingWriter(fd: i32, total: usize, progress: *Progress) void {
    writePattern(fd, total, progress, true);
}

/// Wait until `progress` has not moved for `quiet_ms`; its value then.
pub fn waitStalled(progress: *Progress, quiet_ms: u32) u64 {
    var last = progress.get();
    while (true) {
        sleepMs(quiet_ms);
        const now = progress.get();
        if (now == last) return now;
        last = now;
    }
}

pub fn writerNoFin(fd: i32, total: usize) void {
    writePattern(fd, total, null, false);
}

