// The sockmap relay's verdict program (sk_skb/stream_verdict), loaded by native/src/sockmap.zig.
//
// One SOCKHASH holds both sockets of every relayed pair, each under its PEER's socket cookie:
// key cookie(client side) -> upstream socket, key cookie(upstream side) -> client socket. So a segment
// arriving on either socket looks up its own cookie and is redirected to the egress of the other one,
// without ever reaching userspace. A miss (a socket being removed, or not paired yet) returns SK_PASS:
// the bytes stay readable on the socket they arrived on.
//
// Every byte is also counted, per source socket, in an array the loader maps into its own memory
// (BPF_F_MMAPABLE): two counters per socket, bytes redirected and bytes passed (a lookup that
// missed: the pair is being handed back to userspace). The loader's thread compares them with what
// the sockets have taken (syscalls it makes only for sockets whose counts moved): the kernel's
// redirect backlog has no bound of its own, and these counts are what let the loader give it one
// without a syscall per socket per tick.
//
// No headers: the program is freestanding (zig cc -target bpfel-freestanding), so the few types and
// helper ids it needs are spelled out here, with their uapi names (include/uapi/linux/bpf.h).
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SK_DROP 0
#define SK_PASS 1

// uapi struct __sk_buff: only its first field is read here.
struct __sk_buff {
	__u32 len;
};

// Helper ids from enum bpf_func_id (stable uapi numbers).
static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static __u64 (*bpf_get_socket_cookie)(void *ctx) = (void *)46;
static long (*bpf_sk_redirect_hash)(struct __sk_buff *skb, void *map, void *key, __u64 flags) = (void *)72;

// The maps are created by the loader; these symbols only mark where it puts each map's fd (the
// ld_imm64 relocations against them, matched by name in native/src/bpf.zig):
// - sock_pairs: SOCKHASH, key u64 cookie, value the peer socket;
// - sock_slots: HASH, key u64 cookie, value u32 slot;
// - slot_bytes: ARRAY of u64, mmapable: at 2*slot the bytes redirected from the socket that owns
//   the slot, at 2*slot+1 the bytes passed.
char sock_pairs[8] __attribute__((section("maps"), used));
char sock_slots[8] __attribute__((section("maps"), used));
char slot_bytes[8] __attribute__((section("maps"), used));

__attribute__((section("sk_skb/stream_verdict"), used))
int relay_verdict(struct __sk_buff *skb)
{
	// A FIN arrives as an empty skb: TCP has already noted it (the socket reads EOF, epoll says
	// RDHUP). Redirected, the peer's backlog would send 0 bytes, which the kernel takes for a broken
	// pipe (EPIPE, and that peer's redirects stop for good); passed, it would be queued behind
	// bytes still waiting in this socket's own backlog and fail the same way. Dropped, it is just
	// freed. FINs are passed on by the loader's thread (EPOLLRDHUP + shutdown).
	__u32 len = skb->len;
	if (len == 0)
		return SK_DROP;
	__u64 cookie = bpf_get_socket_cookie(skb);
	// flags 0 = egress: the bytes leave through the peer socket, toward the peer's remote end.
	long verdict = bpf_sk_redirect_hash(skb, sock_pairs, &cookie, 0);
	__u32 *slot = bpf_map_lookup_elem(sock_slots, &cookie);
	if (slot) {
		__u32 index = *slot * 2 + (verdict == SK_DROP ? 1 : 0);
		__u64 *bytes = bpf_map_lookup_elem(slot_bytes, &index);
		if (bytes)
			__sync_fetch_and_add(bytes, len);
	}
	return verdict == SK_DROP ? SK_PASS : (int)verdict;
}

char _license[] __attribute__((section("license"), used)) = "Dual MIT/GPL";
