//! Socket, epoll, clock and output helpers over raw `std.os.linux` syscalls.
//! Raw syscalls are the stable surface across Zig releases; they return usize and errno() decodes them.
const std = @import("std");
const linux = std.os.linux;

pub const E = linux.E;

pub fn errno(rc: usize) E {
    return linux.errno(rc);
}

/// Short errno name for messages ("CONNREFUSED"), safe for values the enum does not name.
pub fn errName(e: E) []const u8 {
    return std.enums.tagName(E, e) orelse "UNKNOWN";
}

// ---------------------------------------------------------------- time

/// Monotonic nanoseconds (vDSO, no syscall).
pub fn nowNs() u64 {
    var ts: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &ts);
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
}

pub fn sleepNs(ns: u64) void {
    var req: linux.timespec = .{ .sec = @intCast(ns / std.time.ns_per_s), .nsec = @intCast(ns % std.time.ns_per_s) };
    _ = linux.nanosleep(&req, null);
}

// ---------------------------------------------------------------- addresses

pub const ParseError = error{InvalidAddress};

/// An IPv4 or IPv6 socket address in kernel layout, ready for connect()/bind().
pub const Address = union(enum) {
    v4: linux.sockaddr.in,
    v6: linux.sockaddr.in6,

    /// "127.0.0.1:8080" or "[::1]:8080". Numeric only: a load generator must not depend on DNS.
    pub fn parse(text: []const u8) ParseError!Address {
        if (text.len > 0 and text[0] == '[') {
            const rb = std.mem.indexOfScalar(u8, text, ']') orelse return error.InvalidAddress;
            if (rb + 1 >= text.len or text[rb + 1] != ':') return error.InvalidAddress;
            var bytes: [16]u8 = undefined;
            try parseIp6(text[1..rb], &bytes);
            const pt = try parsePort(text[rb + 2 ..]);
            return .{ .v6 = .{ .port = std.mem.nativeToBig(u16, pt), .flowinfo = 0, .addr = bytes, .scope_id = 0 } };
        }
        const colon = std.mem.lastIndexOfScalar(u8, text, ':') orelse return error.InvalidAddress;
        var bytes: [4]u8 = undefined;
        try parseIp4(text[0..colon], &bytes);
        const pt = try parsePort(text[colon + 1 ..]);
        return .{ .v4 = .{ .port = std.mem.nativeToBig(u16, pt), .addr = @bitCast(bytes) } };
    }

    pub fn family(a: *const Address) u32 {
        return switch (a.*) {
            .v4 => linux.AF.INET,
            .v6 => linux.AF.INET6,
        };
    }

    pub fn sockaddr(a: *const Address) *const linux.sockaddr {
        return switch (a.*) {
            .v4 => |*s| @ptrCast(s),
            .v6 => |*s| @ptrCast(s),
        };
    }

    pub fn len(a: *const Address) linux.socklen_t {
        return switch (a.*) {
            .v4 => @sizeOf(linux.sockaddr.in),
            .v6 => @sizeOf(linux.sockaddr.in6),
        };
    }

    pub fn port(a: *const Address) u16 {
        return switch (a.*) {
            .v4 => |s| std.mem.bigToNative(u16, s.port),
            .v6 => |s| std.mem.bigToNative(u16, s.port),
        };
    }

    pub fn setPort(a: *Address, p: u16) void {
        switch (a.*) {
            .v4 => |*s| s.port = std.mem.nativeToBig(u16, p),
            .v6 => |*s| s.port = std.mem.nativeToBig(u16, p),
        }
    }

    /// "127.0.0.1:8080" / "[::1]:8080" (RFC 5952 zero compression).
    pub fn format(a: *const Address, buf: []u8) []const u8 {
        switch (a.*) {
            .v4 => |s| {
                const b: [4]u8 = @bitCast(s.addr);
                return std.fmt.bufPrint(buf, "{d}.{d}.{d}.{d}:{d}", .{ b[0], b[1], b[2], b[3], a.port() }) catch buf[0..0];
            },
            .v6 => |s| {
                var groups: [8]u16 = undefined;
                for (&groups, 0..) |*g, i| g.* = (@as(u16, s.addr[2 * i]) << 8) | s.addr[2 * i + 1];
                // Longest run (>= 2) of zero groups is written as "::".
                var best_start: usize = 8;
                var best_len: usize = 1;
                var i: usize = 0;
                while (i < 8) {
                    if (groups[i] != 0) {
                        i += 1;
                        continue;
                    }
                    var j = i;
                    while (j < 8 and groups[j] == 0) j += 1;
                    if (j - i > best_len) {
                        best_start = i;
                        best_len = j - i;
                    }
                    i = j;
                }
                var n: usize = 0;
                buf[n] = '[';
                n += 1;
                i = 0;
                while (i < 8) {
                    if (i == best_start) {
                        const s2 = if (i == 0) "::" else ":";
                        @memcpy(buf[n..][0..s2.len], s2);
                        n += s2.len;
                        i += best_len;
                        continue;
                    }
                    const w = std.fmt.bufPrint(buf[n..], "{x}", .{groups[i]}) catch return buf[0..0];
                    n += w.len;
                    if (i != 7) {
                        buf[n] = ':';
                        n += 1;
                    }
                    i += 1;
                }
                const tail = std.fmt.bufPrint(buf[n..], "]:{d}", .{a.port()}) catch return buf[0..0];
                return buf[0 .. n + tail.len];
            },
        }
    }

    pub fn fromStorage(st: *const linux.sockaddr.storage) ?Address {
        return switch (st.family) {
            linux.AF.INET => .{ .v4 = @as(*const linux.sockaddr.in, @ptrCast(st)).* },
            linux.AF.INET6 => .{ .v6 = @as(*const linux.sockaddr.in6, @ptrCast(st)).* },
            else => null,
        };
    }
};

fn parsePort(s: []const u8) ParseError!u16 {
    if (s.len == 0) return error.InvalidAddress;
    return std.fmt.parseInt(u16, s, 10) catch error.InvalidAddress;
}

fn parseIp4(s: []const u8, out: *[4]u8) ParseError!void {
    var it = std.mem.splitScalar(u8, s, '.');
    var i: usize = 0;
    while (it.next()) |part| : (i += 1) {
        if (i == 4 or part.len == 0 or part.len > 3) return error.InvalidAddress;
        out[i] = std.fmt.parseInt(u8, part, 10) catch return error.InvalidAddress;
    }
    if (i != 4) return error.InvalidAddress;
}

/// Hex groups with at most one "::". Embedded dotted IPv4 tails are not supported.
fn parseIp6(s: []const u8, out: *[16]u8) ParseError!void {
    var head: [8]u16 = undefined;
    var tail: [8]u16 = undefined;
    var nh: usize = 0;
    var nt: usize = 0;
    if (std.mem.indexOf(u8, s, "::")) |dc| {
        nh = try parseGroups(s[0..dc], &head);
        nt = try parseGroups(s[dc + 2 ..], &tail);
        if (nh + nt > 7) return error.InvalidAddress;
    } else {
        nh = try parseGroups(s, &head);
        if (nh != 8) return error.InvalidAddress;
    }
    var groups: [8]u16 = @splat(0);
    @memcpy(groups[0..nh], head[0..nh]);
    @memcpy(groups[8 - nt ..], tail[0..nt]);
    for (groups, 0..) |g, i| {
        out[2 * i] = @intCast(g >> 8);
        out[2 * i + 1] = @truncate(g);
    }
}

fn parseGroups(s: []const u8, out: *[8]u16) ParseError!usize {
    if (s.len == 0) return 0;
    var it = std.mem.splitScalar(u8, s, ':');
    var n: usize = 0;
    while (it.next()) |g| : (n += 1) {
        if (n == 8 or g.len == 0 or g.len > 4) return error.InvalidAddress;
        out[n] = std.fmt.parseInt(u16, g, 16) catch return error.InvalidAddress;
    }
    return n;
}

// ---------------------------------------------------------------- sockets

pub const FdResult = union(enum) { fd: i32, err: E };

/// Nonblocking, close-on-exec TCP socket.
pub fn tcpSocket(family: u32) FdResult {
    const rc = linux.socket(family, linux.SOCK.STREAM | linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC, 0);
    return switch (errno(rc)) {
        .SUCCESS => .{ .fd = @intCast(rc) },
        else => |e| .{ .err = e },
    };
}

pub fn setIntOpt(fd: i32, level: i32, opt: u32, value: c_int) E {
    return errno(linux.setsockopt(fd, level, opt, std.mem.asBytes(&value), @sizeOf(c_int)));
}

/// Requests are small and latency-bound: never let Nagle hold one back.
pub fn setNoDelay(fd: i32) void {
    _ = setIntOpt(fd, linux.IPPROTO.TCP, linux.TCP.NODELAY, 1);
}

/// Pending error of a nonblocking connect (SO_ERROR), SUCCESS when it connected.
pub fn socketError(fd: i32) E {
    var v: c_int = 0;
    var l: linux.socklen_t = @sizeOf(c_int);
    const rc = linux.getsockopt(fd, linux.SOL.SOCKET, linux.SO.ERROR, std.mem.asBytes(&v), &l);
    if (errno(rc) != .SUCCESS) return errno(rc);
    return @fromBackingInt(@intCast(@as(u16, @intCast(v))));
}

pub fn close(fd: i32) void {
    _ = linux.close(fd);
}

/// A listening socket with SO_REUSEADDR and SO_REUSEPORT, so each server thread (and even several
/// server processes) can own a socket on the same port and the kernel spreads connections over them.
pub fn listenTcp(addr: *const Address, backlog: u32) FdResult {
    const s = tcpSocket(addr.family());
    const fd = switch (s) {
        .fd => |fd| fd,
        .err => return s,
    };
    _ = setIntOpt(fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, 1);
    _ = setIntOpt(fd, linux.SOL.SOCKET, linux.SO.REUSEPORT, 1);
    var e = errno(linux.bind(fd, addr.sockaddr(), addr.len()));
    if (e == .SUCCESS) e = errno(linux.listen(fd, backlog));
    if (e != .SUCCESS) {
        close(fd);
        return .{ .err = e };
    }
    return .{ .fd = fd };
}

/// listenTcp, or null after saying why on stderr as `who` ("loadgen serve").
pub fn listenOrSay(addr: *const Address, backlog: u32, who: []const u8) ?i32 {
    return switch (listenTcp(addr, backlog)) {
        .fd => |fd| fd,
        .err => |e| {
            var ab: [64]u8 = undefined;
            print(2, "{s}: cannot listen on {s}: {s}\n", .{ who, addr.format(&ab), errName(e) });
            return null;
        },
    };
}

pub fn localAddress(fd: i32) ?Address {
    var st: linux.sockaddr.storage = undefined;
    var l: linux.socklen_t = @sizeOf(linux.sockaddr.storage);
    if (errno(linux.getsockname(fd, @ptrCast(&st), &l)) != .SUCCESS) return null;
    return Address.fromStorage(&st);
}

// ---------------------------------------------------------------- epoll

pub const EPOLL = linux.EPOLL;
pub const Event = linux.epoll_event;

pub const Epoll = struct {
    fd: i32,

    pub fn init() FdResult {
        const rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
        return switch (errno(rc)) {
            .SUCCESS => .{ .fd = @intCast(rc) },
            else => |e| .{ .err = e },
        };
    }

    pub fn add(ep: Epoll, fd: i32, events: u32, data: u64) E {
        var ev: Event = .{ .events = events, .data = .{ .u64 = data } };
        return errno(linux.epoll_ctl(ep.fd, linux.EPOLL.CTL_ADD, fd, &ev));
    }

    pub fn modify(ep: Epoll, fd: i32, events: u32, data: u64) E {
        var ev: Event = .{ .events = events, .data = .{ .u64 = data } };
        return errno(linux.epoll_ctl(ep.fd, linux.EPOLL.CTL_MOD, fd, &ev));
    }

    /// Number of ready events; 0 on timeout or EINTR (a signal only needs the loop to look again).
    pub fn wait(ep: Epoll, events: []Event, timeout_ms: i32) usize {
        const rc = linux.epoll_wait(ep.fd, events.ptr, @intCast(events.len), timeout_ms);
        if (errno(rc) != .SUCCESS) return 0;
        return rc;
    }

    pub fn deinit(ep: Epoll) void {
        close(ep.fd);
    }
};

// ---------------------------------------------------------------- process

/// Raise the soft open-file limit to the hard one; returns the limit now in force.
pub fn raiseNofile() u64 {
    var rl: linux.rlimit = undefined;
    if (errno(linux.getrlimit(.NOFILE, &rl)) != .SUCCESS) return 1024;
    if (rl.cur < rl.max) {
        const want: linux.rlimit = .{ .cur = rl.max, .max = rl.max };
        if (errno(linux.setrlimit(.NOFILE, &want)) == .SUCCESS) return rl.max;
    }
    return rl.cur;
}

/// Set by SIGINT/SIGTERM; every loop polls it. Only an atomic store happens in the handler.
pub var signalled = std.atomic.Value(bool).init(false);

fn onSignal(_: linux.SIG) callconv(.c) void {
    signalled.store(true, .release);
}

/// SIGINT/SIGTERM stop the run cleanly; SIGPIPE is ignored so a write to a reset socket returns EPIPE.
pub fn installSignals() void {
    var stop: linux.Sigaction = .{ .handler = .{ .handler = onSignal }, .mask = linux.sigemptyset(), .flags = 0 };
    _ = linux.sigaction(.INT, &stop, null);
    _ = linux.sigaction(.TERM, &stop, null);
    var ign: linux.Sigaction = .{ .handler = .{ .handler = linux.SIG.IGN }, .mask = linux.sigemptyset(), .flags = 0 };
    _ = linux.sigaction(.PIPE, &ign, null);
}

/// Write everything to a blocking fd (stdout/stderr); unbuffered, so nothing needs flushing.
pub fn writeAll(fd: i32, bytes: []const u8) void {
    var off: usize = 0;
    while (off < bytes.len) {
        const rc = linux.write(fd, bytes.ptr + off, bytes.len - off);
        switch (errno(rc)) {
            .SUCCESS => off += rc,
            .INTR, .AGAIN => continue,
            else => return,
        }
    }
}

pub fn print(fd: i32, comptime fmt: []const u8, args: anytype) void {
    var buf: [1024]u8 = undefined;
    const s = std.fmt.bufPrint(&buf, fmt, args) catch buf[0..];
    writeAll(fd, s);
}

// ---------------------------------------------------------------- tests

const testing = std.testing;

test "parse IPv4 targets" {
    const a = try Address.parse("127.0.0.1:8080");
    try testing.expectEqual(@as(u16, 8080), a.port());
    try testing.expectEqual(@as(u32, linux.AF.INET), a.family());
    try testing.expectEqual([4]u8{ 127, 0, 0, 1 }, @as([4]u8, @bitCast(a.v4.addr)));
    var buf: [64]u8 = undefined;
    try testing.expectEqualStrings("127.0.0.1:8080", a.format(&buf));
    try testing.expectEqualStrings("0.0.0.0:0", (try Address.parse("0.0.0.0:0")).format(&buf));
}

test "parse IPv6 targets" {
    var buf: [64]u8 = undefined;
    const a = try Address.parse("[::1]:443");
    try testing.expectEqual(@as(u16, 443), a.port());
    try testing.expectEqual(@as(u32, linux.AF.INET6), a.family());
    try testing.expectEqual(@as(u8, 1), a.v6.addr[15]);
    try testing.expectEqualStrings("[::1]:443", a.format(&buf));
    try testing.expectEqualStrings("[::]:0", (try Address.parse("[::]:0")).format(&buf));
    try testing.expectEqualStrings("[2001:db8::1]:9", (try Address.parse("[2001:0db8:0:0:0:0:0:1]:9")).format(&buf));
    try testing.expectEqualStrings("[fe80::1:0:0:2]:1", (try Address.parse("[fe80:0:0:0:1::2]:1")).format(&buf));
    try testing.expectEqualStrings("[1:2:3:4:5:6:7:8]:65535", (try Address.parse("[1:2:3:4:5:6:7:8]:65535")).format(&buf));
}

test "reject malformed addresses" {
    const bad = [_][]const u8{
        "",                      "127.0.0.1",         "127.0.0.1:",           "127.0.0.1:65536", "256.0.0.1:1",
        "1.2.3:1",               "1.2.3.4.5:1",       "a.b.c.d:1",            "::1:80",          "[::1]",
        "[::1]80",               "[::1:80",           "[1:::2]:1",            "[1::2::3]:1",     "[12345::]:1",
        "[1:2:3:4:5:6:7:8:9]:1", "[1:2:3:4:5:6:7]:1", "[1:2:3:4:5:6:7::8]:1", "localhost:80",
    };
    for (bad) |s| {
        if (Address.parse(s)) |_| {
            std.debug.print("accepted bad address '{s}'\n", .{s});
            return error.TestUnexpectedResult;
        } else |_| {}
    }
}

test "listen on port 0 reports the real port" {
    var a = try Address.parse("127.0.0.1:0");
    const fd = switch (listenTcp(&a, 16)) {
        .fd => |fd| fd,
        .err => return error.SkipZigTest,
    };
    defer close(fd);
    const local = localAddress(fd).?;
    try testing.expect(local.port() != 0);
}
