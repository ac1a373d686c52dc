//! CPU sampling of (pid, tid) pairs for the least-cpu balancer: one thread reads
//! /proc/PID/task/TID/stat every SAMPLE_MS and keeps each thread's share of one core, in permille,
//! where JS reads it with a plain call that never blocks (an atomic load; no file access on the
//! caller's thread).
const std = @import("std");
const linux = std.os.linux;
const sys = @import("sys.zig");

pub const SAMPLE_MS = 250;
/// /proc reports utime and stime in USER_HZ ticks, which the kernel fixes at 100 for userspace.
const USER_HZ = 100;
pub const MAX_WATCHED = 1024;

/// permille: >= 0 a sample; UNKNOWN until two reads exist; GONE once the thread has exited.
pub const UNKNOWN: i32 = -@as(i32, @intFromEnum(linux.E.AGAIN));
pub const GONE: i32 = -@as(i32, @intFromEnum(linux.E.SRCH));

const Slot = struct {
    pid: i32 = 0,
    tid: i32 = 0,
    ticks: u64 = 0,
    at_ms: i64 = 0,
    permille: i32 = UNKNOWN,
};

pub const Sampler = struct {
    lock: sys.Lock = .{},
    slots: [MAX_WATCHED]Slot = @splat(.{}),
    thread: ?std.Thread = null,
    stopping: bool = false,

    /// Start sampling (pid, tid); starts the thread on first use. 0, or -errno (ENOSPC: table full).
    pub fn watch(self: *Sampler, pid: i32, tid: i32) c_int {
        if (pid <= 0 or tid <= 0) return sys.errnoInt(.INVAL);
        self.lock.lock();
        defer self.lock.unlock();
        var free: ?*Slot = null;
        for (&self.slots) |*s| {
            if (s.pid == pid and s.tid == tid) return 0;
            if (s.pid == 0 and free == null) free = s;
        }
        const s = free orelse return sys.errnoInt(.NOSPC);
        s.* = .{ .pid = pid, .tid = tid };
        if (self.thread == null) self.thread = std.Thread.spawn(.{}, run, .{self}) catch return sys.errnoInt(.AGAIN);
        return 0;
    }

    pub fn unwatch(self: *Sampler, pid: i32, tid: i32) void {
        self.lock.lock();
        defer self.lock.unlock();
        for (&self.slots) |*s| if (s.pid == pid and s.tid == tid) {
            s.* = .{};
        };
    }

    /// The latest sample: permille of one core, UNKNOWN, GONE, or -ENOENT when not watched.
    pub fn permille(self: *Sampler, pid: i32, tid: i32) i32 {
        self.lock.lock();
        defer self.lock.unlock();
        for (&self.slots) |*s| if (s.pid == pid and s.tid == tid) return s.permille;
        return -@as(i32, @intFromEnum(linux.E.NOENT));
    }

    pub fn stop(self: *Sampler) void {
        @atomicStore(bool, &self.stopping, true, .release);
        if (self.thread) |t| t.join();
        self.thread = null;
        @atomicStore(bool, &self.stopping, false, .release);
    }

    fn run(self: *Sampler) void {
        while (!@atomicLoad(bool, &self.stopping, .acquire)) {
            self.sampleAll();
            var waited: u32 = 0;
            while (waited < SAMPLE_MS and !@atomicLoad(bool, &self.stopping, .acquire)) : (waited += 10) sys.sleepMs(10);
        }
    }

    /// One round. The file is read outside the lock (a slow /proc read never holds up JS).
    pub fn sampleAll(self: *Sampler) void {
        for (0..MAX_WATCHED) |i| {
            self.lock.lock();
            const s = self.slots[i];
            self.lock.unlock();
            if (s.pid == 0) continue;
            const now = sys.nowMs();
            const ticks = readTicks(s.pid, s.tid);
            self.lock.lock();
            defer self.lock.unlock();
            const slot = &self.slots[i];
            if (slot.pid != s.pid or slot.tid != s.tid) continue; // unwatched meanwhile
            if (ticks) |t| {
                if (slot.at_ms > 0 and now > slot.at_ms) {
                    const dt: u64 = @intCast(now - slot.at_ms);
                    const used = (t -| slot.ticks) * 1000 * 1000 / USER_HZ; // ms of CPU x 1000
                    slot.permille = @intCast(@min(used / dt, 1000 * 64));
                }
                slot.ticks = t;
                slot.at_ms = now;
            } else slot.permille = GONE;
        }
    }
};

/// utime + stime of /proc/PID/task/TID/stat, in USER_HZ ticks; null if the thread is gone.
pub fn readTicks(pid: i32, tid: i32) ?u64 {
    var path_buf: [64]u8 = undefined;
    const path = std.mem.printSentinel(&path_buf, "/proc/{d}/task/{d}/stat", .{ pid, tid }, 0) catch return null;
    const rc = linux.open(path, .{ .CLOEXEC = true }, 0);
    if (linux.errno(rc) != .SUCCESS) return null;
    const fd: i32 = @intCast(rc);
    defer sys.closeFd(fd);
    var buf: [1024]u8 = undefined;
    const n = linux.read(fd, &buf, buf.len);
    if (linux.errno(n) != .SUCCESS) return null;
    return parseTicks(buf[0..n]);
}

/// Fields 14 (utime) and 15 (stime) of a stat line. The command name (field 2) is in parentheses
/// and may itself hold spaces and parentheses, so counting starts after the LAST ')'.
pub fn parseTicks(line: []const u8) ?u64 {
    const close = std.mem.lastIndexOfScalar(u8, line, ')') orelse return null;
    var it = std.mem.tokenizeScalar(u8, line[close + 1 ..], ' ');
    var field: usize = 3;
    var utime: ?u64 = null;
    while (it.next()) |tok| : (field += 1) {
        if (field == 14) utime = std.fmt.parseInt(u64, tok, 10) catch return null;
        if (field == 15) return (utime orelse return null) + (std.fmt.parseInt(u64, tok, 10) catch return null);
    }
    return null;
}

test "stat line: utime + stime, with a command name holding ') ('" {
    const line = "1234 (evil) (name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 70 0 0 20 0 1 0 100 0 0";
    try std.testing.expectEqual(@as(?u64, 320), parseTicks(line));
    try std.testing.expectEqual(@as(?u64, null), parseTicks("garbage"));
}

fn spin(stop: *bool) void {
    var x: u64 = 0;
    while (!@atomicLoad(bool, stop, .acquire)) x +%= 1;
    std.mem.doNotOptimizeAway(x);
}

test "a spinning thread samples near 1000 permille, an idle one near 0, a gone one GONE" {
    var sampler = Sampler{};
    defer sampler.stop();
    var stop = false;
    const t = try std.Thread.spawn(.{}, spin, .{&stop});
    var tid: i32 = 0;
    // Find the spinner's tid: the newest task of this process that is running.
    sys.sleepMs(50);
    const pid: i32 = @intCast(linux.getpid());
    tid = newestTask(pid) orelse return error.NoTask;
    try std.testing.expectEqual(@as(c_int, 0), sampler.watch(pid, tid));
    try std.testing.expectEqual(@as(c_int, 0), sampler.watch(pid, @intCast(linux.gettid()))); // this thread sleeps
    try std.testing.expectEqual(UNKNOWN, sampler.permille(pid, tid));
    sys.sleepMs(1200);
    const busy = sampler.permille(pid, tid);
    const idle = sampler.permille(pid, @intCast(linux.gettid()));
    @atomicStore(bool, &stop, true, .release);
    t.join();
    // Shared, noisy machine: the spinner gets at least a fifth of a core, the sleeper hardly any.
    try std.testing.expect(busy > 200);
    try std.testing.expect(idle >= 0 and idle < 100);
    try std.testing.expectEqual(-@as(i32, @intFromEnum(linux.E.NOENT)), sampler.permille(pid, 999_999));
    try std.testing.expectEqual(@as(?u64, null), readTicks(pid, 999_999));
}

fn newestTask(pid: i32) ?i32 {
    var path_buf: [64]u8 = undefined;
    const path = std.mem.printSentinel(&path_buf, "/proc/{d}/task", .{pid}, 0) catch return null;
    const rc = linux.open(path, .{ .DIRECTORY = true, .CLOEXEC = true }, 0);
    if (linux.errno(rc) != .SUCCESS) return null;
    const dir: i32 = @intCast(rc);
    defer sys.closeFd(dir);
    var buf: [8192]u8 align(8) = undefined;
    var best: i32 = 0;
    while (true) {
        const got = linux.getdents64(dir, &buf, buf.len);
        if (linux.errno(got) != .SUCCESS or got == 0) break;
        var off: usize = 0;
        while (off < got) {
            const reclen = std.mem.readInt(u16, buf[off + 16 ..][0..2], .little);
            const name = std.mem.sliceTo(buf[off + 19 ..], 0);
            const n = std.fmt.parseInt(i32, name, 10) catch 0;
            if (n > best) best = n;
            off += reclen;
        }
    }
    return if (best > 0) best else null;
}
