//! Builds libswitchyard.so, the C-ABI library that src/native/ loads through bun:ffi.
//! Pinned to Zig 0.17.1 (scripts/bootstrap.sh); the build API changes between releases.
const std = @import("std");

pub fn build(b: *std.Build) void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});

    const root = b.createModule(.{
        .root_source_file = b.path("src/lib.zig"),
        .target = target,
        .optimize = optimize,
        // The library runs inside Bun (a glibc process): its threads must be pthreads, which
        // std.Thread uses only when libc is linked (raw clone() threads would clobber glibc's TLS).
        .link_libc = true,
    });
    const lib = b.addLibrary(.{ .name = "switchyard", .linkage = .dynamic, .root_module = root });
    b.installArtifact(lib);

    const tests = b.addTest(.{ .root_module = root });
    b.step("test", "Run the library's unit tests").dependOn(&b.addRunArtifact(tests).step);
}
