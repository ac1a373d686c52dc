//! Listening sockets made by the supervisor and handed to workers, plus the small unix-socket calls
//! the process model needs (sd_notify's datagram). A socket made here is bound and listening but
//! never accepted on by the process that made it: the supervisor only holds it open, so a worker
//! that dies never closes it, and connections queued on it wait for the replacement worker.
//!
//! Options (bit flags of `sy_listen_inet`):
//! - REUSEPORT: one socket per worker on the same address; the kernel spreads new connections by
//!   4-tuple hash, so workers do not contend on one accept queue.
//! - V6ONLY: an IPv6 socket that does not also take IPv4 (so "[::]:443" and "0.0.0.0:443" coexist).
//! - FASTOPEN: TCP_FASTOPEN with a queue of `backlog` pending cookies.
//! - DEFER_ACCEPT: wake the acceptor only once the client sent data. Only for client-first protocols:
//!   on a server-first port (MySQL, SMTP) the client waits for a greeting and never sends.
const std = @import("std");
const linux = std.os.linux;

pub const REUSEPORT: u32 = 1;
pub const V6ONLY: u32 = 2;
pub const FASTOPEN: u32 = 4;
pub const DEFER_ACCEPT: u32 = 8;

/// Seconds a deferred accept waits for the client's first bytes before the kernel accepts anyway.
const DEFER_ACCEPT_SECONDS: i32 = 10;

fn err(rc: usize) c_int {
    return -@as(c_int, @intCast(@intFromEnum(linux.errno(rc))));
}

fn failed(rc: usize) bool {
    return linux.errno(rc) != .SUCCESS;
}

fn setInt(fd: i32, level: i32, opt: u32, value: i32) usize {
    return linux.setsockopt(fd, level, opt, @ptrCast(&value), @sizeOf(i32));
}

/// A bound, listening TCP socket. `ip` is 4 or 16 bytes in network order (family 4 or 6), `port`
/// host order (0: the kernel picks). Returns the fd (close-on-exec; spawn dup2()s it into workers)
/// or -errno.
pub fn listenInet(ip: [*]const u8, family: c_int, port: c_int, backlog: c_int, flags: u32) c_int {
    const af: u32 = if (family == 6) linux.AF.INET6 else linux.AF.INET;
    const rc = linux.socket(af, linux.SOCK.STREAM | linux.SOCK.CLOEXEC | linux.SOCK.NONBLOCK, 0);
    if (failed(rc)) return err(rc);
    const fd: i32 = @intCast(rc);
    const r = configureAndBind(fd, ip, af, port, backlog, flags);
    if (r < 0) {
        _ = linux.close(fd);
        return r;
    }
    return fd;
}

fn configureAndBind(fd: i32, ip: [*]const u8, af: u32, port: c_int, backlog: c_int, flags: u32) c_int {
    var rc = setInt(fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, 1);
    if (failed(rc)) return err(rc);
    if (flags & REUSEPORT != 0) {
        rc = setInt(fd, linux.SOL.SOCKET, linux.SO.REUSEPORT, 1);
        if (failed(rc)) return err(rc);
    }
    if (af == linux.AF.INET6) {
        rc = setInt(fd, linux.IPPROTO.IPV6, linux.IPV6.V6ONLY, if (flags & V6ONLY != 0) 1 else 0);
        if (failed(rc)) return err(rc);
    }
    const p: u16 = std.mem.nativeToBig(u16, @intCast(port));
    if (af == linux.AF.INET6) {
        var sa = linux.sockaddr.in6{ .port = p, .flowinfo = 0, .addr = ip[0..16].*, .scope_id = 0 };
        rc = linux.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.in6));
    } else {
        var sa = linux.sockaddr.in{ .port = p, .addr = @bitCast(ip[0..4].*) };
        rc = linux.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.in));
    }
    if (failed(rc)) return err(rc);
    // Best effort: a kernel without them still listens; the caller asked for speed-ups, not semantics.
    if (flags & FASTOPEN != 0) _ = setInt(fd, linux.IPPROTO.TCP, linux.TCP.FASTOPEN, @max(backlog, 16));
    if (flags & DEFER_ACCEPT != 0) _ = setInt(fd, linux.IPPROTO.TCP, linux.TCP.DEFER_ACCEPT, DEFER_ACCEPT_SECONDS);
    rc = linux.listen(fd, @intCast(@max(backlog, 1)));
    if (failed(rc)) return err(rc);
    return 0;
}

/// Set the accept queue length of a socket that already listens (listen(2) again updates it). Bun's
/// Bun.listen({fd}) calls listen(fd, 511) itself, which would otherwise replace the backlog the socket
/// was made with. 0 or -errno.
pub fn setBacklog(fd: c_int, backlog: c_int) c_int {
    const rc = linux.listen(fd, @intCast(@max(backlog, 1)));
    if (failed(rc)) return err(rc);
    return 0;
}

/// A bound, listening unix stream socket at `path` (`len` bytes, no NUL). The caller removes a stale
/// socket file first. fd or -errno.
pub fn listenUnix(path: [*]const u8, len: c_int, backlog: c_int) c_int {
    var sa = linux.sockaddr.un{ .family = linux.AF.UNIX, .path = undefined };
    const n: usize = @intCast(len);
    if (n == 0 or n >= sa.path.len) return -@as(c_int, @intFromEnum(linux.E.NAMETOOLONG));
    @memset(&sa.path, 0);
    @memcpy(sa.path[0..n], path[0..n]);
    const rc = linux.socket(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.CLOEXEC | linux.SOCK.NONBLOCK, 0);
    if (failed(rc)) return err(rc);
    const fd: i32 = @intCast(rc);
    var r = linux.bind(fd, @ptrCast(&sa), @intCast(@sizeOf(linux.sa_family_t) + n));
    if (!failed(r)) r = linux.listen(fd, @intCast(@max(backlog, 1)));
    if (failed(r)) {
        _ = linux.close(fd);
        return err(r);
    }
    return fd;
}

/// A close-on-exec duplicate of `fd` (the same open socket), or -errno: the listener keeps one so it
/// can stop Bun polling a listening socket (Bun closes its fd) without closing the socket.
pub fn dupFd(fd: c_int) c_int {
    const rc = linux.fcntl(fd, linux.F.DUPFD_CLOEXEC, 0);
    if (failed(rc)) return err(rc);
    return @intCast(rc);
}

/// The local port of a bound inet socket (host order), or -errno.
pub fn localPort(fd: c_int) c_int {
    var sa: linux.sockaddr.in6 = undefined;
    var len: linux.socklen_t = @sizeOf(linux.sockaddr.in6);
    const rc = linux.getsockname(fd, @ptrCast(&sa), &len);
    if (failed(rc)) return err(rc);
    return std.mem.bigToNative(u16, sa.port);
}

/// What an inherited fd is: 1 a listening stream socket, 0 something else, or -errno.
pub fn isListeningSocket(fd: c_int) c_int {
    var v: i32 = 0;
    var len: linux.socklen_t = @sizeOf(i32);
    const rc = linux.getsockopt(fd, linux.SOL.SOCKET, linux.SO.ACCEPTCONN, @ptrCast(&v), &len);
    if (failed(rc)) return err(rc);
    return if (v != 0) 1 else 0;
}

/// Send one datagram `msg` to the unix socket at `path` (a leading '@' means the abstract namespace,
/// as in NOTIFY_SOCKET). 0 or -errno.
pub fn sendDatagram(path: [*]const u8, path_len: c_int, msg: [*]const u8, msg_len: c_int) c_int {
    var sa = linux.sockaddr.un{ .family = linux.AF.UNIX, .path = undefined };
    const n: usize = @intCast(path_len);
    if (n == 0 or n >= sa.path.len) return -@as(c_int, @intFromEnum(linux.E.NAMETOOLONG));
    @memset(&sa.path, 0);
    @memcpy(sa.path[0..n], path[0..n]);
    if (sa.path[0] == '@') sa.path[0] = 0;
    const rc = linux.socket(linux.AF.UNIX, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0);
    if (failed(rc)) return err(rc);
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    const sent = linux.sendto(fd, msg, @intCast(msg_len), linux.MSG.NOSIGNAL, @ptrCast(&sa), @intCast(@sizeOf(linux.sa_family_t) + n));
    if (failed(sent)) return err(sent);
    return 0;
}

/// CLOCK_MONOTONIC in microseconds (sd_notify's MONOTONIC_USEC; Bun's hrtime counts from process start).
pub fn monotonicUsec() i64 {
    var ts: linux.timespec = undefined;
    if (failed(linux.clock_gettime(.MONOTONIC, &ts))) return -1;
    return @as(i64, ts.sec) * 1_000_000 + @divTrunc(@as(i64, ts.nsec), 1000);
}

const testing = std.testing;

test "monotonic clock is positive and does not go back" {
    const a = monotonicUsec();
    const b = monotonicUsec();
    try testing.expect(a > 0 and b >= a);
}

test "two reuseport sockets share a kernel-chosen port; the port reads back" {
    const lo = [4]u8{ 127, 0, 0, 1 };
    const a = listenInet(&lo, 4, 0, 16, REUSEPORT | FASTOPEN | DEFER_ACCEPT);
    try testing.expect(a >= 0);
    defer _ = linux.close(a);
    const port = localPort(a);
    try testing.expect(port > 0);
    const b = listenInet(&lo, 4, port, 16, REUSEPORT);
    try testing.expect(b >= 0);
    defer _ = linux.close(b);
    try testing.expectEqual(port, localPort(b));
    try testing.expectEqual(@as(c_int, 1), isListeningSocket(a));
    const d = dupFd(a);
    try testing.expect(d >= 0 and d != a);
    try testing.expectEqual(port, localPort(d));
    _ = linux.close(d);
    // Without REUSEPORT the same port is refused.
    try testing.expectEqual(-@as(c_int, @intFromEnum(linux.E.ADDRINUSE)), listenInet(&lo, 4, port, 16, 0));
}

test "listening again sets a new backlog; a socket that does not listen is refused" {
    const lo = [4]u8{ 127, 0, 0, 1 };
    const a = listenInet(&lo, 4, 0, 16, 0);
    try testing.expect(a >= 0);
    defer _ = linux.close(a);
    try testing.expectEqual(@as(c_int, 0), setBacklog(a, 4096));
    try testing.expectEqual(@as(c_int, 1), isListeningSocket(a));
    try testing.expectEqual(-@as(c_int, @intFromEnum(linux.E.BADF)), setBacklog(-1, 8));
}

test "v6only socket and unix socket listen" {
    const lo6 = [16]u8{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
    const a = listenInet(&lo6, 6, 0, 16, V6ONLY);
    if (a == -@as(c_int, @intFromEnum(linux.E.AFNOSUPPORT)) or a == -@as(c_int, @intFromEnum(linux.E.ADDRNOTAVAIL))) return; // no IPv6 here
    try testing.expect(a >= 0);
    _ = linux.close(a);
    const path = "/tmp/switchyard-listen-zig-test.sock";
    _ = linux.unlink(path);
    const u = listenUnix(path, path.len, 8);
    try testing.expect(u >= 0);
    _ = linux.close(u);
    _ = linux.unlink(path);
}

test "a datagram reaches a bound unix datagram socket" {
    const path = "/tmp/switchyard-notify-zig-test.sock";
    _ = linux.unlink(path);
    var sa = linux.sockaddr.un{ .family = linux.AF.UNIX, .path = undefined };
    @memset(&sa.path, 0);
    @memcpy(sa.path[0..path.len], path);
    const fd: i32 = @intCast(linux.socket(linux.AF.UNIX, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0));
    defer _ = linux.close(fd);
    try testing.expect(!failed(linux.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.un))));
    try testing.expectEqual(@as(c_int, 0), sendDatagram(path, path.len, "READY=1", 7));
    var buf: [32]u8 = undefined;
    const n = linux.recvfrom(fd, &buf, buf.len, 0, null, null);
    try testing.expectEqualStrings("READY=1", buf[0..n]);
    _ = linux.unlink(path);
}
