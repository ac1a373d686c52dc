//! Small Linux helpers shared by the relay engines (splice.zig, sockmap.zig): raw syscalls that
//! return -errno, socket options, the clock. No state.
const std = @import("std");
const linux = std.os.linux;

pub fn nowMs() i64 {
    return @intCast(nowNs() / std.time.ns_per_ms);
}

/// The monotonic clock in nanoseconds.
pub fn nowNs() u64 {
    var ts: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &ts);
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
}

pub fn sleepMs(ms: u32) void {
    const ts = linux.timespec{ .sec = @intCast(ms / 1000), .nsec = @as(isize, ms % 1000) * 1_000_000 };
    _ = linux.nanosleep(&ts, null);
}

pub fn closeFd(fd: i32) void {
    if (fd >= 0) _ = linux.close(fd);
}

/// -errno of a failed raw syscall result.
pub fn negErrno(rc: usize) c_int {
    return -@as(c_int, @intCast(@intFromEnum(linux.errno(rc))));
}

pub fn errnoInt(e: linux.E) c_int {
    return -@as(c_int, @intCast(@intFromEnum(e)));
}

/// SO_ERROR of a socket (and clears it): 0 when none.
pub fn sockError(fd: i32) u32 {
    var err: i32 = 0;
    var len: linux.socklen_t = @sizeOf(i32);
    const rc = linux.getsockopt(fd, linux.SOL.SOCKET, linux.SO.ERROR, @ptrCast(&err), &len);
    if (linux.errno(rc) != .SUCCESS) return 0;
    return @intCast(err);
}

pub const TCP_INFO = 11;
pub const TCP_CLOSE: u8 = 7;

/// The fields of struct tcp_info (include/uapi/linux/tcp.h) the engines read, at their uapi offsets.
pub const TcpInfo = struct {
    state: u8,
    /// ms since the last data segment arrived
    last_data_recv: u32,
    /// sequence space received in order: payload, plus 1 once a FIN arrived
    bytes_received: u64,
    /// payload bytes written into the socket so far (sent once, sent again, or not sent yet):
    /// bytes_sent - bytes_retrans + notsent_bytes, from one getsockopt (one consistent snapshot)
    bytes_queued: u64,
    /// bytes written into the socket and not sent yet
    notsent: u32,
};

/// tcp_info of a TCP socket; null for anything else (unix sockets) or a kernel older than 4.19.
pub fn tcpInfo(fd: i32) ?TcpInfo {
    var raw = std.mem.zeroes([232]u8);
    var len: linux.socklen_t = raw.len;
    const rc = linux.getsockopt(fd, linux.IPPROTO.TCP, TCP_INFO, &raw, &len);
    if (linux.errno(rc) != .SUCCESS or len < 216) return null;
    const u32At = struct {
        fn f(b: []const u8, off: usize) u32 {
            return std.mem.readInt(u32, b[off..][0..4], .little);
        }
    }.f;
    const u64At = struct {
        fn f(b: []const u8, off: usize) u64 {
            return std.mem.readInt(u64, b[off..][0..8], .little);
        }
    }.f;
    return .{
        .state = raw[0],
        .last_data_recv = u32At(&raw, 52),
        .bytes_received = u64At(&raw, 128),
        .bytes_queued = u64At(&raw, 200) - u64At(&raw, 208) + u32At(&raw, 144),
        .notsent = u32At(&raw, 144),
    };
}

const SIOCOUTQ = 0x5411;

/// tcpi_bytes_acked of a socket that connect()ed counts its SYN as one byte (the SYN-ACK advances
/// snd_una by one); an accepted socket's does not. bytesWritten leaves that to the caller.
pub const SYN_COUNTED_ACTIVE: u64 = 1;

/// Bytes written into a TCP socket so far (write_seq less the initial sequence): bytes the peer
/// acknowledged (tcp_info) plus bytes not acknowledged yet (SIOCOUTQ), read until the ack count
/// did not move in between, so the two belong together. bytes_sent/bytes_retrans are not used: they
/// count transmissions, which under loss and probes drift from bytes written. Null if not TCP.
pub fn bytesWritten(fd: i32) ?u64 {
    var tries: u32 = 0;
    while (tries < 8) : (tries += 1) {
        const a1 = ackedBytes(fd) orelse return null;
        var outq: i32 = 0;
        if (linux.errno(linux.ioctl(fd, SIOCOUTQ, @intFromPtr(&outq))) != .SUCCESS) return null;
        const a2 = ackedBytes(fd) orelse return null;
        if (a1 == a2) return a1 + @as(u64, @intCast(@max(outq, 0)));
    }
    return null;
}

fn ackedBytes(fd: i32) ?u64 {
    var raw = std.mem.zeroes([136]u8);
    var len: linux.socklen_t = raw.len;
    const rc = linux.getsockopt(fd, linux.IPPROTO.TCP, TCP_INFO, &raw, &len);
    if (linux.errno(rc) != .SUCCESS or len < 128) return null;
    return std.mem.readInt(u64, raw[120..128], .little);
}

/// tcpi_state of a TCP socket; 0 for anything else (unix sockets).
pub fn tcpState(fd: i32) u8 {
    var info = std.mem.zeroes([8]u8);
    var len: linux.socklen_t = info.len;
    const rc = linux.getsockopt(fd, linux.IPPROTO.TCP, TCP_INFO, &info, &len);
    if (linux.errno(rc) != .SUCCESS) return 0;
    return info[0];
}

pub fn setLingerZero(fd: i32) void {
    const l = linux.linger{ .onoff = 1, .linger = 0 };
    _ = linux.setsockopt(fd, linux.SOL.SOCKET, linux.SO.LINGER, @ptrCast(&l), @sizeOf(linux.linger));
}

/// A nonblocking close-on-exec duplicate of `fd`, or -errno. O_NONBLOCK lives on the open file,
/// so it is shared with the caller's fd (Bun's fds are nonblocking already).
pub fn dupNonblock(fd: i32) c_int {
    const rc = linux.fcntl(fd, linux.F.DUPFD_CLOEXEC, 0);
    if (linux.errno(rc) != .SUCCESS) return negErrno(rc);
    const dup: i32 = @intCast(rc);
    const fl = linux.fcntl(dup, linux.F.GETFL, 0);
    const nb: usize = @as(u32, @bitCast(linux.O{ .NONBLOCK = true }));
    const rc2 = if (linux.errno(fl) == .SUCCESS) linux.fcntl(dup, linux.F.SETFL, fl | nb) else fl;
    if (linux.errno(rc2) != .SUCCESS) {
        closeFd(dup);
        return negErrno(rc2);
    }
    return dup;
}

/// A tiny spin lock; critical sections are a few instructions long.
pub const Lock = struct {
    m: std.atomic.Mutex = .unlocked,
    pub fn lock(self: *Lock) void {
        var spins: u32 = 0;
        while (!self.m.tryLock()) {
            spins += 1;
            if (spins < 64) std.atomic.spinLoopHint() else _ = linux.sched_yield();
        }
    }
    pub fn unlock(self: *Lock) void {
        self.m.unlock();
    }
};

test "tcp_info counts what a loopback connection carried (offsets of uapi linux/tcp.h)" {
    const ls: i32 = @intCast(linux.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0));
    defer closeFd(ls);
    var addr = linux.sockaddr.in{ .port = 0, .addr = std.mem.nativeToBig(u32, 0x7f000001) };
    var len: linux.socklen_t = @sizeOf(linux.sockaddr.in);
    _ = linux.bind(ls, @ptrCast(&addr), len);
    _ = linux.listen(ls, 1);
    _ = linux.getsockname(ls, @ptrCast(&addr), &len);
    const c: i32 = @intCast(linux.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0));
    defer closeFd(c);
    try std.testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.connect(c, @ptrCast(&addr), len)));
    const s: i32 = @intCast(linux.accept4(ls, null, null, linux.SOCK.CLOEXEC));
    defer closeFd(s);
    var buf: [1000]u8 = undefined;
    @memset(&buf, 0x78);
    try std.testing.expectEqual(@as(usize, 1000), linux.write(c, &buf, buf.len));
    var got: usize = 0;
    while (got < 1000) got += linux.read(s, &buf, buf.len);
    const ci = tcpInfo(c).?;
    const si = tcpInfo(s).?;
    try std.testing.expectEqual(@as(u64, 1000), ci.bytes_queued);
    // The connecting side's count includes its SYN (acknowledged like a byte); the accepted side's not.
    try std.testing.expectEqual(@as(?u64, 1000 + SYN_COUNTED_ACTIVE), bytesWritten(c));
    try std.testing.expectEqual(@as(?u64, 0), bytesWritten(s));
    try std.testing.expectEqual(@as(u64, 1000), si.bytes_received);
    try std.testing.expectEqual(@as(u8, 1), si.state); // ESTABLISHED
    _ = linux.shutdown(c, linux.SHUT.WR);
    sleepMs(20);
    try std.testing.expectEqual(@as(u64, 1001), tcpInfo(s).?.bytes_received); // the FIN counts one
    try std.testing.expectEqual(@as(u64, 1000), tcpInfo(c).?.bytes_queued);
}
