//! Builds `loadgen`, the benchmark suite's load generator and backend. Pinned to Zig 0.17.1
//! (tools/zig); the build API changes between releases.
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const mod = b.createModule(.{ .root_source_file = b.path("src/main.zig"), .target = target, .optimize = optimize });
    const exe = b.addExecutable(.{ .name = "loadgen", .root_module = mod });
    b.installArtifact(exe);
    const t = b.addTest(.{ .root_module = mod });
    b.step("test", "unit tests").dependOn(&b.addRunArtifact(t).step);
}
