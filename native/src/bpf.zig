//! Just enough of bpf(2) and ELF to load the sockmap relay's verdict program (native/bpf/relay.bpf.c,
//! compiled by build.zig with `zig cc -target bpfel-freestanding` and embedded in this library), so
//! the host needs no libbpf. The object has one program section whose relocations are ld_imm64
//! instructions loading a map's address; each names its map by symbol and becomes "load map fd N"
//! (src_reg = BPF_PSEUDO_MAP_FD). The maps themselves are made here, not read from the object.
//! Every function returns >= 0 or -errno.
const std = @import("std");
const linux = std.os.linux;
const BPF = linux.BPF;
const sys = @import("sys.zig");

pub const PROGRAM_SECTION = "sk_skb/stream_verdict";
const LICENSE_SECTION = "license";
const MAX_MAP_REFS = 8;

/// An ld_imm64 that loads a map: its byte offset in the program and the index of its symbol in
/// the names the caller passed to `parse`.
pub const MapRef = struct { offset: usize, map: usize };

pub const Program = struct {
    /// 8-byte instructions, little-endian, copied out of the object (map fds not patched yet)
    insns: []align(8) u8,
    map_refs: [MAX_MAP_REFS]MapRef,
    map_ref_count: usize,
    license: [:0]const u8,
};

pub const ElfError = error{ NotElf, NoProgram, NoLicense, BadRelocation, TooManyRelocations, OutOfMemory };

const Shdr = std.elf.Elf64_Shdr;
const Sym = std.elf.Elf64_Sym;
const Rel = std.elf.Elf64_Rel;

/// Read the program section, its relocations against the map symbols `maps` (any other symbol is
/// refused) and the license out of an ELF64 little-endian relocatable object.
pub fn parse(gpa: std.mem.Allocator, obj: []const u8, maps: []const []const u8) ElfError!Program {
    if (obj.len < @sizeOf(std.elf.Elf64_Ehdr) or !std.mem.eql(u8, obj[0..4], "\x7fELF") or obj[4] != 2 or obj[5] != 1) return error.NotElf;
    const eh = std.mem.bytesAsValue(std.elf.Elf64_Ehdr, obj[0..@sizeOf(std.elf.Elf64_Ehdr)]);
    const count = eh.e_shnum;
    if (eh.e_shoff + @as(u64, count) * @sizeOf(Shdr) > obj.len or eh.e_shstrndx >= count) return error.NotElf;
    const shdrs = try gpa.alloc(Shdr, count);
    defer gpa.free(shdrs);
    @memcpy(std.mem.sliceAsBytes(shdrs), obj[eh.e_shoff..][0 .. @as(usize, count) * @sizeOf(Shdr)]);
    const names = try section(obj, shdrs[eh.e_shstrndx]);

    var prog_index: ?usize = null;
    var license: ?[:0]const u8 = null;
    for (shdrs, 0..) |sh, i| {
        const name = cstr(names, sh.sh_name);
        if (std.mem.eql(u8, name, PROGRAM_SECTION)) prog_index = i;
        if (std.mem.eql(u8, name, LICENSE_SECTION)) {
            const bytes = try section(obj, sh);
            const end = std.mem.indexOfScalar(u8, bytes, 0) orelse return error.NoLicense;
            license = bytes[0..end :0];
        }
    }
    const pi = prog_index orelse return error.NoProgram;
    const code = try section(obj, shdrs[pi]);
    if (code.len == 0 or code.len % 8 != 0) return error.NoProgram;
    var prog = Program{ .insns = try gpa.alignedAlloc(u8, .@"8", code.len), .map_refs = undefined, .map_ref_count = 0, .license = license orelse return error.NoLicense };
    errdefer gpa.free(prog.insns);
    @memcpy(prog.insns, code);

    // The REL section whose sh_info names the program section, against its symbol table.
    for (shdrs) |sh| {
        if (sh.sh_type != std.elf.SHT_REL or sh.sh_info != pi) continue;
        if (sh.sh_link >= count) return error.BadRelocation;
        const symtab = shdrs[sh.sh_link];
        const syms = try section(obj, symtab);
        const strs = try section(obj, shdrs[symtab.sh_link]);
        const rels = try section(obj, sh);
        var off: usize = 0;
        while (off + @sizeOf(Rel) <= rels.len) : (off += @sizeOf(Rel)) {
            const rel = std.mem.bytesToValue(Rel, rels[off..][0..@sizeOf(Rel)]);
            const si = rel.r_info >> 32;
            if ((si + 1) * @sizeOf(Sym) > syms.len) return error.BadRelocation;
            const sym = std.mem.bytesToValue(Sym, syms[si * @sizeOf(Sym) ..][0..@sizeOf(Sym)]);
            const map = indexOf(maps, cstr(strs, sym.st_name)) orelse return error.BadRelocation;
            // Must land on an ld_imm64 (opcode 0x18, two slots).
            if (rel.r_offset % 8 != 0 or rel.r_offset + 16 > code.len or code[rel.r_offset] != 0x18) return error.BadRelocation;
            if (prog.map_ref_count == prog.map_refs.len) return error.TooManyRelocations;
            prog.map_refs[prog.map_ref_count] = .{ .offset = rel.r_offset, .map = map };
            prog.map_ref_count += 1;
        }
    }
    if (prog.map_ref_count == 0) return error.BadRelocation;
    return prog;
}

fn indexOf(names: []const []const u8, name: []const u8) ?usize {
    for (names, 0..) |n, i| if (std.mem.eql(u8, n, name)) return i;
    return null;
}

fn section(obj: []const u8, sh: Shdr) ElfError![]const u8 {
    if (sh.sh_type == std.elf.SHT_NOBITS) return obj[0..0];
    if (sh.sh_offset + sh.sh_size > obj.len) return error.NotElf;
    return obj[sh.sh_offset..][0..sh.sh_size];
}

fn cstr(strs: []const u8, off: usize) []const u8 {
    if (off >= strs.len) return "";
    const end = std.mem.indexOfScalarPos(u8, strs, off, 0) orelse strs.len;
    return strs[off..end];
}

/// Point every map reference at its map's fd (`fds` in the order of the names given to `parse`):
/// src_reg = BPF_PSEUDO_MAP_FD (1), imm = fd.
pub fn patchMaps(prog: *Program, fds: []const i32) void {
    for (prog.map_refs[0..prog.map_ref_count]) |ref| {
        const off = ref.offset;
        prog.insns[off + 1] = (prog.insns[off + 1] & 0x0f) | (@as(u8, BPF.PSEUDO_MAP_FD) << 4);
        std.mem.writeInt(i32, prog.insns[off + 4 ..][0..4], fds[ref.map], .little);
        std.mem.writeInt(i32, prog.insns[off + 12 ..][0..4], 0, .little);
    }
}

fn call(cmd: BPF.Cmd, attr: *BPF.Attr, size: usize) c_int {
    const rc = linux.bpf(cmd, attr, @intCast(size));
    return if (linux.errno(rc) == .SUCCESS) @intCast(rc) else sys.negErrno(rc);
}

fn createMap(map_type: BPF.MapType, key_size: u32, value_size: u32, max_entries: u32, flags: u32, name: []const u8) c_int {
    var attr = BPF.Attr{ .map_create = std.mem.zeroes(BPF.MapCreateAttr) };
    attr.map_create.map_type = @intFromEnum(map_type);
    attr.map_create.key_size = key_size;
    attr.map_create.value_size = value_size;
    attr.map_create.max_entries = max_entries;
    attr.map_create.map_flags = flags;
    @memcpy(attr.map_create.map_name[0..name.len], name);
    return call(.map_create, &attr, @sizeOf(BPF.MapCreateAttr));
}

/// BPF_MAP_TYPE_SOCKHASH keyed by a u64 socket cookie; values are socket fds on update.
pub fn createSockhash(max_entries: u32) c_int {
    return createMap(.sockhash, 8, 4, max_entries, 0, "sy_sockmap");
}

/// BPF_F_NO_PREALLOC: entries are allocated on insert, so an engine with few pairs costs little.
const F_NO_PREALLOC: u32 = 1;
/// BPF_F_MMAPABLE: the array's values can be mmap()ed into this process.
const F_MMAPABLE: u32 = 1 << 10;

/// BPF_MAP_TYPE_HASH from a u64 socket cookie to a u32 (an index into a counter array).
pub fn createCookieIndex(max_entries: u32) c_int {
    return createMap(.hash, 8, 4, max_entries, F_NO_PREALLOC, "sy_slots");
}

/// BPF_MAP_TYPE_ARRAY of u64 counters that this process maps with `mapCounters`.
pub fn createCounters(count: u32) c_int {
    return createMap(.array, 4, 8, count, F_MMAPABLE, "sy_counts");
}

/// The counters of a `createCounters` map, shared with the program (it adds, we read), or null.
pub fn mapCounters(map_fd: i32, count: u32) ?[]u64 {
    const len = std.mem.alignForward(usize, @as(usize, count) * 8, std.heap.pageSize());
    const rc = linux.mmap(null, len, .{ .READ = true, .WRITE = true }, .{ .TYPE = .SHARED }, map_fd, 0);
    if (linux.errno(rc) != .SUCCESS) return null;
    const ptr: [*]u64 = @ptrFromInt(rc);
    return ptr[0..count];
}

pub fn unmapCounters(counters: []u64) void {
    const len = std.mem.alignForward(usize, counters.len * 8, std.heap.pageSize());
    _ = linux.munmap(@ptrCast(counters.ptr), len);
}

/// Load an sk_skb program; on refusal the verifier's words go to `log` (may be empty).
pub fn loadSkSkb(prog: *const Program, log: []u8) c_int {
    var attr = BPF.Attr{ .prog_load = std.mem.zeroes(BPF.ProgLoadAttr) };
    attr.prog_load.prog_type = @intFromEnum(BPF.ProgType.sk_skb);
    attr.prog_load.insns = @intFromPtr(prog.insns.ptr);
    attr.prog_load.insn_cnt = @intCast(prog.insns.len / 8);
    attr.prog_load.license = @intFromPtr(prog.license.ptr);
    attr.prog_load.expected_attach_type = @intFromEnum(BPF.AttachType.sk_skb_stream_verdict);
    @memcpy(attr.prog_load.prog_name[0..10], "sy_verdict");
    if (log.len > 0) {
        attr.prog_load.log_buf = @intFromPtr(log.ptr);
        attr.prog_load.log_size = @intCast(log.len);
        attr.prog_load.log_level = 1;
    }
    const rc = call(.prog_load, &attr, @sizeOf(BPF.ProgLoadAttr));
    // Retry without a log if the log itself was the problem (a too-small buffer gives ENOSPC).
    if (rc == sys.errnoInt(.NOSPC) and log.len > 0) return loadSkSkb(prog, log[0..0]);
    return rc;
}

/// Attach the verdict program to the map: every socket in the map runs it on arrival.
pub fn attachVerdict(map_fd: i32, prog_fd: i32) c_int {
    var attr = BPF.Attr{ .prog_attach = std.mem.zeroes(BPF.ProgAttachAttr) };
    attr.prog_attach.target_fd = map_fd;
    attr.prog_attach.attach_bpf_fd = prog_fd;
    attr.prog_attach.attach_type = @intFromEnum(BPF.AttachType.sk_skb_stream_verdict);
    return call(.prog_attach, &attr, @sizeOf(BPF.ProgAttachAttr));
}

const BPF_NOEXIST: u64 = 1;

/// map[key] = value (new keys only), for maps with u64 keys and u32 values (a socket map's value is
/// the socket's fd).
pub fn insertU32(map_fd: i32, key: u64, value: u32) c_int {
    var k = key;
    var v = value;
    var attr = BPF.Attr{ .map_elem = std.mem.zeroes(BPF.MapElemAttr) };
    attr.map_elem.map_fd = map_fd;
    attr.map_elem.key = @intFromPtr(&k);
    attr.map_elem.result.value = @intFromPtr(&v);
    attr.map_elem.flags = BPF_NOEXIST;
    return call(.map_update_elem, &attr, @sizeOf(BPF.MapElemAttr));
}

pub fn remove(map_fd: i32, key: u64) c_int {
    var k = key;
    var attr = BPF.Attr{ .map_elem = std.mem.zeroes(BPF.MapElemAttr) };
    attr.map_elem.map_fd = map_fd;
    attr.map_elem.key = @intFromPtr(&k);
    return call(.map_delete_elem, &attr, @sizeOf(BPF.MapElemAttr));
}

const SO_COOKIE = 57;

/// The socket's cookie (SO_COOKIE, Linux 4.12+): what bpf_get_socket_cookie() sees in the program.
pub fn socketCookie(fd: i32) ?u64 {
    var cookie: u64 = 0;
    var len: linux.socklen_t = 8;
    const rc = linux.getsockopt(fd, linux.SOL.SOCKET, SO_COOKIE, @ptrCast(&cookie), &len);
    return if (linux.errno(rc) == .SUCCESS) cookie else null;
}

const TEST_MAPS = [_][]const u8{ "sock_pairs", "sock_slots", "slot_bytes" };

test "the embedded object parses: one program, a reference to each map, a license" {
    const obj = @embedFile("relay_bpf");
    var prog = try parse(std.testing.allocator, obj, &TEST_MAPS);
    defer std.testing.allocator.free(prog.insns);
    try std.testing.expect(prog.insns.len / 8 <= 40);
    try std.testing.expectEqual(@as(usize, 3), prog.map_ref_count);
    try std.testing.expectEqualStrings("Dual MIT/GPL", prog.license);
    patchMaps(&prog, &.{ 40, 41, 42 });
    var seen = [_]bool{ false, false, false };
    for (prog.map_refs[0..prog.map_ref_count]) |ref| {
        const off = ref.offset;
        seen[ref.map] = true;
        try std.testing.expectEqual(@as(u8, 0x18), prog.insns[off]);
        try std.testing.expectEqual(@as(u8, 1), prog.insns[off + 1] >> 4);
        try std.testing.expectEqual(@as(i32, 40 + @as(i32, @intCast(ref.map))), std.mem.readInt(i32, prog.insns[off + 4 ..][0..4], .little));
    }
    try std.testing.expectEqual([_]bool{ true, true, true }, seen);
}

test "a relocation against a map the caller did not name is refused" {
    const obj = @embedFile("relay_bpf");
    try std.testing.expectError(error.BadRelocation, parse(std.testing.allocator, obj, TEST_MAPS[0..2]));
}

test "garbage is not an object" {
    try std.testing.expectError(error.NotElf, parse(std.testing.allocator, "not an elf file at all, not at all, no", &TEST_MAPS));
}
