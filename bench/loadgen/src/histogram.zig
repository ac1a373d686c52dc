//! Log-linear latency histogram in the spirit of HdrHistogram.
//!
//! Values are nanoseconds. Every power of two [2^m, 2^(m+1)) is split into 128 equal sub-buckets, so a
//! bucket is at most 1/128 (0.78 %) of its lower bound wide, and the midpoint we report is within 0.4 %
//! of any value that fell in it. Values below 256 ns get exact buckets. The range ends at 60 s; larger
//! values land in the last bucket, while `max` stays exact.
//!
//! Each worker thread owns one histogram (no locks, no atomics on the hot path); they are merged once
//! the run is over.
const std = @import("std");

pub const sub_bits = 7;
pub const sub_count: u64 = 1 << sub_bits; // 128 sub-buckets per octave
pub const max_trackable_ns: u64 = 60 * std.time.ns_per_s;
pub const bucket_count: usize = bucketIndex(max_trackable_ns) + 1;

/// Bucket index of a value: exact below 2*sub_count, then 128 buckets per power of two.
pub fn bucketIndex(v: u64) usize {
    if (v < 2 * sub_count) return @intCast(v);
    const msb: u6 = @intCast(63 - @clz(v));
    const shift: u6 = msb - sub_bits; // width of a bucket in this octave is 2^shift
    return @intCast(@as(u64, shift) * sub_count + (v >> shift));
}

/// Smallest value that maps to bucket `idx`, and the bucket's width.
pub fn bucketBounds(idx: usize) struct { lower: u64, width: u64 } {
    if (idx < 2 * sub_count) return .{ .lower = idx, .width = 1 };
    const shift: u6 = @intCast(idx / sub_count - 1);
    const sub: u64 = idx - @as(u64, shift) * sub_count; // in [128, 256)
    return .{ .lower = sub << shift, .width = @as(u64, 1) << shift };
}

pub const Histogram = struct {
    counts: [bucket_count]u64 = @splat(0),
    total: u64 = 0,
    sum: u128 = 0,
    min: u64 = std.math.maxInt(u64),
    max: u64 = 0,

    pub fn record(h: *Histogram, v: u64) void {
        const idx = bucketIndex(@min(v, max_trackable_ns));
        h.counts[idx] += 1;
        h.total += 1;
        h.sum += v;
        if (v < h.min) h.min = v;
        if (v > h.max) h.max = v;
    }

    pub fn merge(h: *Histogram, other: *const Histogram) void {
        for (&h.counts, other.counts) |*c, o| c.* += o;
        h.total += other.total;
        h.sum += other.sum;
        h.min = @min(h.min, other.min);
        h.max = @max(h.max, other.max);
    }

    /// Value at percentile `p` (0 < p <= 100): the midpoint of the bucket holding the ceil(p% * n)-th
    /// smallest sample, clamped to the exact [min, max]. 0 when empty.
    pub fn percentile(h: *const Histogram, p: f64) u64 {
        if (h.total == 0) return 0;
        const want_f = @ceil(p / 100.0 * @as(f64, @floatFromInt(h.total)));
        const want: u64 = std.math.clamp(@as(u64, @intFromFloat(@max(want_f, 1))), 1, h.total);
        if (want == h.total) return h.max; // the largest sample is known exactly
        var seen: u64 = 0;
        for (h.counts, 0..) |c, idx| {
            seen += c;
            if (seen >= want) {
                const b = bucketBounds(idx);
                const mid = b.lower + (b.width - 1) / 2;
                return std.math.clamp(mid, h.min, h.max);
            }
        }
        return h.max;
    }

    pub fn mean(h: *const Histogram) f64 {
        if (h.total == 0) return 0;
        return @as(f64, @floatFromInt(h.sum)) / @as(f64, @floatFromInt(h.total));
    }
};

const testing = std.testing;

fn expectWithin(expected: f64, actual: u64, rel: f64) !void {
    const a: f64 = @floatFromInt(actual);
    if (@abs(a - expected) > rel * expected) {
        std.debug.print("expected {d} within {d}%, got {d}\n", .{ expected, rel * 100, a });
        return error.TestExpectedApproxEq;
    }
}

test "bucket index and bounds agree, buckets are contiguous and narrow" {
    var idx: usize = 0;
    var expected_lower: u64 = 0;
    while (idx < bucket_count) : (idx += 1) {
        const b = bucketBounds(idx);
        try testing.expectEqual(expected_lower, b.lower);
        try testing.expectEqual(idx, bucketIndex(b.lower));
        try testing.expectEqual(idx, bucketIndex(b.lower + b.width - 1));
        // Relative width never exceeds 1/128 once buckets stop being exact.
        if (b.width > 1) try testing.expect(b.width * sub_count <= b.lower);
        expected_lower = b.lower + b.width;
    }
    try testing.expect(expected_lower > max_trackable_ns);
}

test "every value round-trips within 0.4 percent" {
    var v: u64 = 1;
    while (v < max_trackable_ns) : (v = v * 3 / 2 + 7) {
        const b = bucketBounds(bucketIndex(v));
        const mid = b.lower + (b.width - 1) / 2;
        try expectWithin(@floatFromInt(v), mid, 0.004);
    }
}

test "uniform distribution percentiles" {
    var h: Histogram = .{};
    // 1 us .. 100 ms in 1 us steps
    var i: u64 = 1;
    while (i <= 100_000) : (i += 1) h.record(i * 1000);
    try expectWithin(50_000_000, h.percentile(50), 0.01);
    try expectWithin(90_000_000, h.percentile(90), 0.01);
    try expectWithin(99_000_000, h.percentile(99), 0.01);
    try expectWithin(99_900_000, h.percentile(99.9), 0.01);
    try testing.expectEqual(@as(u64, 100_000_000), h.max);
    try testing.expectEqual(@as(u64, 1000), h.min);
    try testing.expectEqual(@as(u64, 100_000_000), h.percentile(100));
    try expectWithin(50_000_500, @intFromFloat(h.mean()), 0.0001);
}

test "exponential distribution percentiles" {
    // Inverse CDF sampled deterministically: x = -mean * ln(1 - q), q on a fine grid.
    var h: Histogram = .{};
    const mean_ns: f64 = 40_000; // 40 us
    const n: u64 = 200_000;
    var k: u64 = 0;
    while (k < n) : (k += 1) {
        const q = (@as(f64, @floatFromInt(k)) + 0.5) / @as(f64, @floatFromInt(n));
        h.record(@intFromFloat(-mean_ns * @log(1 - q)));
    }
    for ([_]f64{ 50, 90, 99, 99.9 }) |p| {
        const exact = -mean_ns * @log(1 - p / 100);
        try expectWithin(exact, h.percentile(p), 0.01);
    }
}

test "constant, bimodal, merge, empty and overflow" {
    var a: Histogram = .{};
    var b: Histogram = .{};
    try testing.expectEqual(@as(u64, 0), a.percentile(50));
    for (0..990) |_| a.record(25_000); // 99 % at 25 us
    for (0..10) |_| b.record(3_000_000); // 1 % at 3 ms
    a.merge(&b);
    try testing.expectEqual(@as(u64, 1000), a.total);
    try expectWithin(25_000, a.percentile(50), 0.004);
    try expectWithin(25_000, a.percentile(99), 0.004);
    try expectWithin(3_000_000, a.percentile(99.9), 0.004);
    try testing.expectEqual(@as(u64, 3_000_000), a.max);

    var c: Histogram = .{};
    c.record(120 * std.time.ns_per_s); // beyond the range: clamped bucket, exact max
    try testing.expectEqual(@as(u64, 120 * std.time.ns_per_s), c.max);
    try testing.expectEqual(@as(u64, 120 * std.time.ns_per_s), c.percentile(50));
}
