//! What a relay engine (splice.zig, sockmap.zig, uring.zig) tells JS when a pair ends: fixed-size records in a
//! queue that JS drains by polling (threadsafe JS callbacks from foreign threads are not used: they
//! have crashed Bun). One queue per engine; src/native/ decodes both with one function.
const std = @import("std");
const linux = std.os.linux;
const Lock = @import("sys.zig").Lock;

pub const Reason = enum(u32) {
    done = 0,
    a_reset = 1,
    b_reset = 2,
    idle_timeout = 3,
    a_error = 4,
    b_error = 5,
    shutdown = 6,
    /// sockmap only: the pair is handed back with bytes still to move (a reader fell behind, see
    /// sockmap.zig); the caller relays the rest in userspace.
    migrate = 7,
    /// sockmap only: a redirect backlog the kernel would not bound: both directions busy with one
    /// RESET_AT behind, or a pair being handed back holding more than STRANDED_AT outside any
    /// buffer accounting (sockmap.zig); both peers are reset.
    overflow = 8,
    /// uring native accept only: the upstream refused the connection or could not be reached (err
    /// says how: ECONNREFUSED, EHOSTUNREACH, ...); nothing was relayed.
    connect_failed = 9,
    /// uring native accept only: no answer from the upstream within the connect timeout.
    connect_timeout = 10,
};

/// One completed pair, as JS reads it: 4 x 64-bit little-endian words.
pub const Record = extern struct {
    id: u64,
    a_to_b: u64,
    b_to_a: u64,
    reason: u32,
    err: u32,
};

pub const Queue = struct {
    gpa: std.mem.Allocator,
    lock: Lock = .{},
    items: std.ArrayList(Record) = .empty,
    /// Pairs taken over and not completed yet.
    active: i32 = 0,

    pub fn init(gpa: std.mem.Allocator) Queue {
        return .{ .gpa = gpa };
    }

    pub fn deinit(self: *Queue) void {
        self.items.deinit(self.gpa);
    }

    /// A pair was taken over: it owes one record.
    pub fn begin(self: *Queue) void {
        _ = @atomicRmw(i32, &self.active, .Add, 1, .monotonic);
    }

    /// A pair taken over went on elsewhere (another engine owes its record now): it owes none here.
    pub fn forget(self: *Queue) void {
        _ = @atomicRmw(i32, &self.active, .Sub, 1, .monotonic);
    }

    pub fn push(self: *Queue, r: Record) void {
        self.lock.lock();
        defer self.lock.unlock();
        // Out of memory here would lose a completion: retry rather than drop (it cannot grow forever:
        // records are small and JS drains them).
        while (true) {
            self.items.append(self.gpa, r) catch {
                self.lock.unlock();
                _ = linux.sched_yield();
                self.lock.lock();
                continue;
            };
            break;
        }
        _ = @atomicRmw(i32, &self.active, .Sub, 1, .monotonic);
    }

    /// Move up to out.len records into `out`; returns how many.
    pub fn poll(self: *Queue, out: []Record) usize {
        self.lock.lock();
        defer self.lock.unlock();
        const n = @min(out.len, self.items.items.len);
        @memcpy(out[0..n], self.items.items[0..n]);
        const rest = self.items.items.len - n;
        std.mem.copyForwards(Record, self.items.items[0..rest], self.items.items[n..]);
        self.items.shrinkRetainingCapacity(rest);
        return n;
    }

    pub fn activeCount(self: *Queue) i32 {
        return @atomicLoad(i32, &self.active, .monotonic);
    }
};

test "records come out in order, active counts pairs owed" {
    var q = Queue.init(std.testing.allocator);
    defer q.deinit();
    q.begin();
    q.begin();
    q.push(.{ .id = 1, .a_to_b = 2, .b_to_a = 3, .reason = 0, .err = 0 });
    try std.testing.expectEqual(@as(i32, 1), q.activeCount());
    q.push(.{ .id = 2, .a_to_b = 0, .b_to_a = 0, .reason = 3, .err = 0 });
    var out: [1]Record = undefined;
    try std.testing.expectEqual(@as(usize, 1), q.poll(&out));
    try std.testing.expectEqual(@as(u64, 1), out[0].id);
    try std.testing.expectEqual(@as(usize, 1), q.poll(&out));
    try std.testing.expectEqual(@as(u64, 2), out[0].id);
    try std.testing.expectEqual(@as(usize, 0), q.poll(&out));
    try std.testing.expectEqual(@as(i32, 0), q.activeCount());
}
