//! What native accept (uring.zig, "native accept") tells JS and what JS answers, as plain data:
//! - Events, ring thread -> JS: a connection was accepted (listener id, token, client address), or a
//!   connection JS asked to dial is connected (conn id, connect time). Queued under a lock; the first
//!   event after JS drained the queue rings a bell pipe that Bun reads like any stream, so JS is woken
//!   once per batch and no timer runs while nothing arrives (as peek_wait.zig's bell).
//! - Commands, JS -> ring thread: listen on / stop listening on a socket, dial an upstream for a
//!   token, refuse a token (close the client), kill a connection (reset both sides). One small
//!   allocation each; a dial's command holds the upstream address and the connect timeout until the
//!   connect completes (the kernel reads both when it takes the entry).
const std = @import("std");
const linux = std.os.linux;
const sys = @import("sys.zig");
const Lock = sys.Lock;

pub const EventKind = enum(u32) { accepted = 1, connected = 2 };

/// One event as JS reads it (40 bytes, little-endian).
pub const Event = extern struct {
    /// accepted: the token JS answers with; connected: the conn id JS gave the dial.
    key: u64,
    kind: u32,
    /// accepted: the listener id; connected: microseconds the connect took.
    arg: u32,
    /// The client's port (host order) and address family (4, 6, or 1 for a unix socket).
    port: u16 = 0,
    family: u16 = 0,
    /// IPv4 in the first 4 bytes, or IPv6, network order.
    addr: [16]u8 = @splat(0),
    /// The socket this event adds (accepted: the client's; connected: the upstream's), so JS can
    /// set SO_LINGER 0 on it at once when it must cut the pair (a reset at exit, which a command
    /// queued for the ring thread might not beat).
    fd: i32 = -1,
};

comptime {
    std.debug.assert(@sizeOf(Event) == 40);
}

pub const Events = struct {
    gpa: std.mem.Allocator,
    lock: Lock = .{},
    items: std.ArrayList(Event) = .empty,
    bell_read: i32 = -1,
    bell_write: i32 = -1,
    /// The next push rings the bell (JS drained everything since the last ring).
    armed: bool = true,

    pub fn init(gpa: std.mem.Allocator) !Events {
        var pfd: [2]i32 = undefined;
        const rc = linux.pipe2(&pfd, .{ .NONBLOCK = true, .CLOEXEC = true });
        if (linux.errno(rc) != .SUCCESS) return error.Pipe;
        return .{ .gpa = gpa, .bell_read = pfd[0], .bell_write = pfd[1] };
    }

    pub fn deinit(self: *Events) void {
        self.items.deinit(self.gpa);
        sys.closeFd(self.bell_read);
        sys.closeFd(self.bell_write);
    }

    pub fn push(self: *Events, e: Event) void {
        self.lock.lock();
        defer self.lock.unlock();
        // Retry rather than drop: a lost event would leave a client accepted and never answered.
        while (true) {
            self.items.append(self.gpa, e) catch {
                self.lock.unlock();
                _ = linux.sched_yield();
                self.lock.lock();
                continue;
            };
            break;
        }
        if (self.armed) {
            self.armed = false;
            _ = linux.write(self.bell_write, "!", 1);
        }
    }

    /// Move up to out.len events into `out`. Fewer than asked: the queue is empty and the next push
    /// rings the bell again (decided under the lock, so no event is left without a ring).
    pub fn poll(self: *Events, out: []Event) usize {
        self.lock.lock();
        defer self.lock.unlock();
        const n = @min(out.len, self.items.items.len);
        @memcpy(out[0..n], self.items.items[0..n]);
        const rest = self.items.items.len - n;
        std.mem.copyForwards(Event, self.items.items[0..rest], self.items.items[n..]);
        self.items.shrinkRetainingCapacity(rest);
        if (n < out.len) self.armed = true;
        return n;
    }
};

pub const CommandKind = enum { listen, unlisten, connect, refuse, kill };

pub const Command = struct {
    kind: CommandKind,
    token: u64 = 0,
    conn_id: u64 = 0,
    listener: u32 = 0,
    /// listen: the engine's duplicate of the listening socket.
    fd: i32 = -1,
    /// refuse: close with RST instead of FIN.
    reset: bool = false,
    /// connect: the upstream's address (sockaddr_in, _in6 or _un), its length and family.
    sa: [@sizeOf(linux.sockaddr.un)]u8 align(8) = undefined,
    salen: u32 = 0,
    family: u32 = linux.AF.INET,
    timeout: linux.kernel_timespec = .{ .sec = 0, .nsec = 0 },
    idle_ms: i64 = 0,
    started_ns: u64 = 0,
    next: ?*Command = null,

    /// A dial of `token` (connection `conn_id`) to an inet or unix address: `family` 4, 6 or 1,
    /// `addr` 4 or 16 network-order bytes or a unix path, `port` host order.
    pub fn dial(token: u64, conn_id: u64, family: i32, address: []const u8, port: u16, timeout_ms: u32, idle_ms: i64) ?Command {
        var c: Command = .{ .kind = .connect, .token = token, .conn_id = conn_id, .idle_ms = idle_ms };
        c.timeout = .{ .sec = @intCast(timeout_ms / 1000), .nsec = @intCast(@as(u64, timeout_ms % 1000) * std.time.ns_per_ms) };
        @memset(&c.sa, 0);
        switch (family) {
            4 => {
                if (address.len != 4) return null;
                const sa = linux.sockaddr.in{ .port = std.mem.nativeToBig(u16, port), .addr = @bitCast(address[0..4].*) };
                @memcpy(c.sa[0..@sizeOf(linux.sockaddr.in)], std.mem.asBytes(&sa));
                c.salen = @sizeOf(linux.sockaddr.in);
                c.family = linux.AF.INET;
            },
            6 => {
                if (address.len != 16) return null;
                const sa = linux.sockaddr.in6{ .port = std.mem.nativeToBig(u16, port), .flowinfo = 0, .addr = address[0..16].*, .scope_id = 0 };
                @memcpy(c.sa[0..@sizeOf(linux.sockaddr.in6)], std.mem.asBytes(&sa));
                c.salen = @sizeOf(linux.sockaddr.in6);
                c.family = linux.AF.INET6;
            },
            1 => {
                var sa = linux.sockaddr.un{ .family = linux.AF.UNIX, .path = @splat(0) };
                if (address.len == 0 or address.len >= sa.path.len) return null;
                @memcpy(sa.path[0..address.len], address);
                @memcpy(c.sa[0..@sizeOf(linux.sockaddr.un)], std.mem.asBytes(&sa));
                c.salen = @intCast(@sizeOf(linux.sa_family_t) + address.len);
                c.family = linux.AF.UNIX;
            },
            else => return null,
        }
        return c;
    }

    pub fn sockaddr(c: *const Command) *const linux.sockaddr {
        return @ptrCast(&c.sa);
    }
};

/// The peer address of an accepted socket as an event's family/port/addr (getpeername: a multishot
/// accept writes every connection's address into the one buffer it was given, so a batch of
/// completions would find only the last one there).
pub fn peerOf(fd: i32, e: *Event) void {
    var sa: linux.sockaddr.in6 = undefined;
    var len: linux.socklen_t = @sizeOf(linux.sockaddr.in6);
    if (linux.errno(linux.getpeername(fd, @ptrCast(&sa), &len)) != .SUCCESS) return;
    switch (sa.family) {
        linux.AF.INET => {
            const v4: *const linux.sockaddr.in = @ptrCast(&sa);
            e.family = 4;
            e.port = std.mem.bigToNative(u16, v4.port);
            @memcpy(e.addr[0..4], std.mem.asBytes(&v4.addr));
        },
        linux.AF.INET6 => {
            e.family = 6;
            e.port = std.mem.bigToNative(u16, sa.port);
            e.addr = sa.addr;
        },
        else => e.family = 1,
    }
}

const testing = std.testing;

test "the first event after a drain rings the bell once; a partial poll re-arms it" {
    var q = try Events.init(testing.allocator);
    defer q.deinit();
    q.push(.{ .key = 1, .kind = @intFromEnum(EventKind.accepted), .arg = 7 });
    q.push(.{ .key = 2, .kind = @intFromEnum(EventKind.connected), .arg = 90 });
    var b: [8]u8 = undefined;
    try testing.expectEqual(@as(usize, 1), linux.read(q.bell_read, &b, b.len));
    var out: [1]Event = undefined;
    try testing.expectEqual(@as(usize, 1), q.poll(&out)); // full: not drained yet, no re-arm
    try testing.expectEqual(@as(u64, 1), out[0].key);
    q.push(.{ .key = 3, .kind = 1, .arg = 0 });
    try testing.expectEqual(linux.E.AGAIN, linux.errno(linux.read(q.bell_read, &b, b.len)));
    var many: [4]Event = undefined;
    try testing.expectEqual(@as(usize, 2), q.poll(&many));
    try testing.expectEqual(@as(u64, 2), many[0].key);
    try testing.expectEqual(@as(u32, 90), many[0].arg);
    q.push(.{ .key = 4, .kind = 1, .arg = 0 });
    try testing.expectEqual(@as(usize, 1), linux.read(q.bell_read, &b, b.len));
}

test "a dial command holds the address it was given, for each family" {
    const v4 = Command.dial(5, 6, 4, &.{ 127, 0, 0, 1 }, 8080, 1500, 0).?;
    const in: *const linux.sockaddr.in = @ptrCast(&v4.sa);
    try testing.expectEqual(@as(u16, 8080), std.mem.bigToNative(u16, in.port));
    try testing.expectEqual(@as(u32, @sizeOf(linux.sockaddr.in)), v4.salen);
    try testing.expectEqual(@as(isize, 1), v4.timeout.sec);
    try testing.expectEqual(@as(isize, 500 * std.time.ns_per_ms), v4.timeout.nsec);
    const un = Command.dial(5, 6, 1, "/tmp/x.sock", 0, 0, 0).?;
    try testing.expectEqual(@as(u32, linux.AF.UNIX), un.family);
    try testing.expectEqual(@as(u32, 2 + 11), un.salen);
    try testing.expect(Command.dial(5, 6, 4, &.{ 1, 2, 3 }, 1, 0, 0) == null);
    try testing.expect(Command.dial(5, 6, 9, &.{}, 1, 0, 0) == null);
}
