//! The gate's shared table: token buckets and concurrency counts that hold across worker processes.
//! The supervisor creates it (memfd), every worker maps the same pages (MAP_SHARED), so a per-IP rate
//! or a listener's maxConnections is one number for the whole service, not one per worker.
//!
//! - Open addressing: a key (two 32-bit hashes, computed in JS) lives in one of PROBE slots from
//!   h1 % SLOTS. A slot whose counts are all zero and whose bucket has refilled is free to reuse.
//!   When no slot is free the call admits (fails open) and says so: a full table must not become an
//!   outage.
//! - Each slot has a spin lock (a u32, compare-and-swap); the critical section is a few dozen
//!   instructions. A process killed inside it would leave the slot locked: after SPIN_LIMIT spins the
//!   call gives up and admits (result `busy`), so one stuck slot never blocks a worker.
//! - Concurrency is counted per worker column (COLUMNS of them) and summed on read. When a worker
//!   exits (a crash included: kill -9 releases nothing) the supervisor clears its column, so what it
//!   left counted stops counting before its replacement starts.
//! - Tolerance: two workers inserting the same new key at the same moment can create it twice (each
//!   copy has a full bucket), so a brand-new key may briefly get up to one extra burst.
//! - Time is CLOCK_MONOTONIC, the same in every process.
const std = @import("std");
const linux = std.os.linux;

pub const SLOTS: u32 = 65536;
pub const PROBE: u32 = 16;
pub const COLUMNS: u32 = 16;
const SPIN_LIMIT: u32 = 100_000;
/// Tokens are fixed point: one connection costs ONE.
const ONE: i64 = 1_000_000;

pub const Slot = extern struct {
    lock: u32 = 0,
    h1: u32 = 0,
    h2: u32 = 0,
    used: u32 = 0,
    tokens: i64 = 0,
    last_ns: i64 = 0,
    /// When the bucket is full again (then the slot may be reused if nothing is open).
    full_at_ns: i64 = 0,
    conc: [COLUMNS]u32 = @splat(0),
};

pub const BYTES: usize = @as(usize, SLOTS) * @sizeOf(Slot);

pub const Result = enum(c_int) { admitted = 0, rate_limited = 1, concurrency_limited = 2, busy = 3, table_full = 4 };

pub const Table = struct {
    slots: []Slot,
    column: u32,

    fn lockSlot(s: *Slot) bool {
        var spins: u32 = 0;
        while (@cmpxchgWeak(u32, &s.lock, 0, 1, .acquire, .monotonic) != null) {
            spins += 1;
            if (spins > SPIN_LIMIT) return false;
            std.atomic.spinLoopHint();
        }
        return true;
    }

    fn unlockSlot(s: *Slot) void {
        @atomicStore(u32, &s.lock, 0, .release);
    }

    fn total(s: *const Slot) u64 {
        var n: u64 = 0;
        for (s.conc) |c| n += c;
        return n;
    }

    fn reusable(s: *const Slot, now: i64) bool {
        return s.used == 0 or (total(s) == 0 and now >= s.full_at_ns);
    }

    /// Admit one connection for key (h1, h2): refuse if `max_conc` > 0 and that many are open, or if
    /// `rate` > 0 (per second, bucket of `burst`) has no token. On admission with `count` set, the
    /// connection counts as open in this worker's column until {@link release}.
    pub fn take(self: *Table, h1: u32, h2: u32, rate: u32, burst: u32, max_conc: u32, count: bool, now: i64) Result {
        const base = h1 % SLOTS;
        var candidate: ?*Slot = null;
        var i: u32 = 0;
        while (i < PROBE) : (i += 1) {
            const s = &self.slots[(base + i) % SLOTS];
            if (!lockSlot(s)) return .busy;
            if (s.used != 0 and s.h1 == h1 and s.h2 == h2) {
                const r = self.apply(s, rate, burst, max_conc, count, now);
                unlockSlot(s);
                return r;
            }
            if (candidate == null and reusable(s, now)) candidate = s;
            unlockSlot(s);
        }
        const s = candidate orelse return .table_full;
        if (!lockSlot(s)) return .busy;
        defer unlockSlot(s);
        if (!reusable(s, now)) return .table_full; // taken meanwhile: admit rather than search again
        s.* = .{ .lock = 1, .h1 = h1, .h2 = h2, .used = 1, .tokens = @as(i64, burst) * ONE, .last_ns = now, .full_at_ns = now };
        return self.apply(s, rate, burst, max_conc, count, now);
    }

    fn apply(self: *Table, s: *Slot, rate: u32, burst: u32, max_conc: u32, count: bool, now: i64) Result {
        if (max_conc > 0 and total(s) >= max_conc) return .concurrency_limited;
        if (rate > 0) {
            const cap = @as(i64, burst) * ONE;
            const elapsed = @max(now - s.last_ns, 0);
            // tokens += rate/s * elapsed: rate * elapsed_ns / 1e9 * ONE = rate * elapsed_ns / 1000.
            s.tokens = @min(cap, s.tokens + @divTrunc(@as(i64, rate) * elapsed, 1000));
            s.last_ns = now;
            if (s.tokens < ONE) return .rate_limited;
            s.tokens -= ONE;
            s.full_at_ns = now + @divTrunc((cap - s.tokens) * 1000, @as(i64, rate));
        }
        if (count) s.conc[self.column] += 1;
        return .admitted;
    }

    /// One connection of key (h1, h2) counted by this worker has ended.
    pub fn release(self: *Table, h1: u32, h2: u32) void {
        const base = h1 % SLOTS;
        var i: u32 = 0;
        while (i < PROBE) : (i += 1) {
            const s = &self.slots[(base + i) % SLOTS];
            if (!lockSlot(s)) return;
            defer unlockSlot(s);
            if (s.used != 0 and s.h1 == h1 and s.h2 == h2) {
                if (s.conc[self.column] > 0) s.conc[self.column] -= 1;
                return;
            }
        }
    }

    /// Open connections of key (h1, h2), all workers together.
    pub fn open(self: *Table, h1: u32, h2: u32) u64 {
        const base = h1 % SLOTS;
        var i: u32 = 0;
        while (i < PROBE) : (i += 1) {
            const s = &self.slots[(base + i) % SLOTS];
            if (@atomicLoad(u32, &s.used, .monotonic) != 0 and s.h1 == h1 and s.h2 == h2) return total(s);
        }
        return 0;
    }
};

/// The worker that counted in `column` has exited: forget what it left counted there. Only the
/// supervisor calls this, and only for a column no live worker counts in.
pub fn clearColumn(slots: []Slot, column: u32) void {
    for (slots) |*s| {
        if (@atomicLoad(u32, &s.used, .monotonic) == 0) continue;
        // A slot locked by a process killed inside the lock stays as it is (and admits: `busy`).
        if (!Table.lockSlot(s)) continue;
        s.conc[column] = 0;
        Table.unlockSlot(s);
    }
}

pub fn nowNs() i64 {
    var ts: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &ts);
    return @as(i64, ts.sec) * 1_000_000_000 + @as(i64, ts.nsec);
}

/// A new shared table: a memfd of BYTES bytes (zero-filled). fd or -errno.
pub fn create() c_int {
    const rc = linux.memfd_create("switchyard-limits", linux.MFD.CLOEXEC);
    if (linux.errno(rc) != .SUCCESS) return -@as(c_int, @intCast(@intFromEnum(linux.errno(rc))));
    const fd: i32 = @intCast(rc);
    const t = linux.ftruncate(fd, @intCast(BYTES));
    if (linux.errno(t) != .SUCCESS) {
        _ = linux.close(fd);
        return -@as(c_int, @intCast(@intFromEnum(linux.errno(t))));
    }
    return fd;
}

/// Map the table behind `fd` (shared). Null on failure.
pub fn map(fd: c_int) ?[]Slot {
    const rc = linux.mmap(null, BYTES, .{ .READ = true, .WRITE = true }, .{ .TYPE = .SHARED }, fd, 0);
    if (linux.errno(rc) != .SUCCESS) return null;
    const p: [*]Slot = @ptrFromInt(rc);
    return p[0..SLOTS];
}

pub fn unmap(slots: []Slot) void {
    _ = linux.munmap(@ptrCast(slots.ptr), BYTES);
}

const testing = std.testing;

test "token bucket: burst, then refusals, then refill with time" {
    const fd = create();
    try testing.expect(fd >= 0);
    defer _ = linux.close(fd);
    var t = Table{ .slots = map(fd).?, .column = 0 };
    const now: i64 = 1_000_000_000_000;
    var i: u32 = 0;
    while (i < 5) : (i += 1) try testing.expectEqual(Result.admitted, t.take(7, 9, 10, 5, 0, false, now));
    try testing.expectEqual(Result.rate_limited, t.take(7, 9, 10, 5, 0, false, now));
    // 10 per second: one token after 100 ms, not before.
    try testing.expectEqual(Result.rate_limited, t.take(7, 9, 10, 5, 0, false, now + 99_000_000));
    try testing.expectEqual(Result.admitted, t.take(7, 9, 10, 5, 0, false, now + 200_000_000));
    // Another key has its own bucket.
    try testing.expectEqual(Result.admitted, t.take(8, 9, 10, 5, 0, false, now));
}

test "concurrency is summed over worker columns and released per column" {
    const fd = create();
    defer _ = linux.close(fd);
    const slots = map(fd).?;
    var a = Table{ .slots = slots, .column = 0 };
    var b = Table{ .slots = slots, .column = 1 };
    const now: i64 = 5_000_000_000;
    try testing.expectEqual(Result.admitted, a.take(1, 2, 0, 0, 2, true, now));
    try testing.expectEqual(Result.admitted, b.take(1, 2, 0, 0, 2, true, now));
    try testing.expectEqual(Result.concurrency_limited, a.take(1, 2, 0, 0, 2, true, now));
    try testing.expectEqual(@as(u64, 2), a.open(1, 2));
    b.release(1, 2);
    try testing.expectEqual(Result.admitted, a.take(1, 2, 0, 0, 2, true, now));
    // b (column 1) dies holding one: clearing its column leaves a's two counted.
    try testing.expectEqual(Result.admitted, b.take(1, 2, 0, 0, 0, true, now));
    try testing.expectEqual(@as(u64, 3), a.open(1, 2));
    clearColumn(slots, 1);
    try testing.expectEqual(@as(u64, 2), a.open(1, 2));
}

test "a slot with nothing open and a full bucket is reused; a full probe window admits" {
    const fd = create();
    defer _ = linux.close(fd);
    var t = Table{ .slots = map(fd).?, .column = 0 };
    const now: i64 = 9_000_000_000;
    // PROBE keys with the same h1 fill the window, each holding one open connection.
    var k: u32 = 0;
    while (k < PROBE) : (k += 1) try testing.expectEqual(Result.admitted, t.take(3, 100 + k, 0, 0, 10, true, now));
    try testing.expectEqual(Result.table_full, t.take(3, 999, 0, 0, 10, true, now));
    t.release(3, 100);
    try testing.expectEqual(Result.admitted, t.take(3, 999, 0, 0, 10, true, now));
}
