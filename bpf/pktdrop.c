// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* pktdrop's probes. Each probe point has one program per mechanism
 * (tp_btf, classic tracepoint, fentry/fexit, kprobe, netfilter link);
 * userspace loads the best one the running kernel accepts. */
#include "include/vmlinux.h"
#include "include/bpf_helpers.h"
#include "include/bpf_tracing.h"
#include "include/bpf_core_read.h"
#include "include/bpf_endian.h"
#include "event.h"
#include "config.h"
#include "parse.h"
#include "track.h"
#include "snap.h"
#include "emit.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Keep the event types in the object's BTF so bpf2go can generate them. */
const struct pd_event *unused_event __attribute__((unused));
const enum pd_point *unused_point __attribute__((unused));
const enum pd_kind *unused_kind __attribute__((unused));
const enum pd_counter *unused_counter __attribute__((unused));
const enum pd_snap *unused_snap __attribute__((unused));
const enum pd_skb_fact *unused_fact __attribute__((unused));

#define PD_NF_ACCEPT 1
#define PD_VERDICT_PENDING 0x7fffffff

/* ---- the drop and the normal end of a packet ---- */

static __always_inline void on_kfree(struct sk_buff *skb, __u64 location, __u32 reason, struct sock *rx_sk,
				     const bool btf)
{
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_CONSUMED) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_CONSUMED)) {
		on_free(skb, location, reason, PD_KIND_TRACE, NULL, btf);
		return;
	}
	if (bpf_core_enum_value_exists(enum skb_drop_reason, SKB_NOT_DROPPED_YET) &&
	    reason == bpf_core_enum_value(enum skb_drop_reason, SKB_NOT_DROPPED_YET))
		return;
	on_free(skb, location, reason, PD_KIND_DROP, rx_sk, btf);
}

/* Kernels since 6.11 pass the socket that received the packet, when
 * there was one: its state tells TCP's housekeeping frees from drops. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(tpb_kfree_skb_sk, struct sk_buff *skb, void *location, enum skb_drop_reason reason, struct sock *rx_sk)
{
	on_kfree(skb, (__u64)location, reason, rx_sk, true);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(tpb_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	on_kfree(skb, (__u64)location, reason, NULL, true);
	return 0;
}

/* Kernels before 5.17 pass no reason. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(tpb_kfree_skb_noreason, struct sk_buff *skb, void *location)
{
	on_free(skb, (__u64)location, 0, PD_KIND_DROP, NULL, true);
	return 0;
}

/* A classic tracepoint program's return value decides whether the event
 * still goes to perf (perf record, other tools on skb:kfree_skb): 0 would
 * hide it from them. */
#define PD_TP_PASS 1

SEC("tracepoint/skb/kfree_skb")
int tp_kfree_skb(struct trace_event_raw_kfree_skb *ctx)
{
	__u32 reason = 0;
	if (bpf_core_field_exists(ctx->reason))
		reason = BPF_CORE_READ(ctx, reason);
	on_kfree((struct sk_buff *)BPF_CORE_READ(ctx, skbaddr), (__u64)BPF_CORE_READ(ctx, location), reason, NULL, false);
	return PD_TP_PASS;
}

SEC("tp_btf/consume_skb")
int BPF_PROG(tpb_consume_skb, struct sk_buff *skb)
{
	on_free(skb, 0, 0, PD_KIND_TRACE, NULL, true);
	return 0;
}

SEC("tracepoint/skb/consume_skb")
int tp_consume_skb(struct trace_event_raw_consume_skb *ctx)
{
	on_free((struct sk_buff *)BPF_CORE_READ(ctx, skbaddr), 0, 0, PD_KIND_TRACE, NULL, false);
	return PD_TP_PASS;
}

/* ---- device ingress and egress ---- */

static __always_inline void step_at(struct sk_buff *skb, __u8 point, struct net_device *dev, const bool btf)
{
	struct pd_step st = {};
	st.point = point;
	record(skb, &st, dev, btf);
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(tpb_netif_receive_skb, struct sk_buff *skb)
{
	step_at(skb, PD_POINT_NETIF_RECEIVE, NULL, true);
	return 0;
}

SEC("tracepoint/net/netif_receive_skb")
int tp_netif_receive_skb(struct trace_event_raw_net_dev_template *ctx)
{
	step_at((struct sk_buff *)BPF_CORE_READ(ctx, skbaddr), PD_POINT_NETIF_RECEIVE, NULL, false);
	return PD_TP_PASS;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(tpb_net_dev_queue, struct sk_buff *skb)
{
	step_at(skb, PD_POINT_DEV_QUEUE, NULL, true);
	return 0;
}

SEC("tracepoint/net/net_dev_queue")
int tp_net_dev_queue(struct trace_event_raw_net_dev_template *ctx)
{
	step_at((struct sk_buff *)BPF_CORE_READ(ctx, skbaddr), PD_POINT_DEV_QUEUE, NULL, false);
	return PD_TP_PASS;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(tpb_net_dev_start_xmit, struct sk_buff *skb, struct net_device *dev)
{
	step_at(skb, PD_POINT_DEV_XMIT, dev, true);
	return 0;
}

/* ---- IP layer entry points (fentry, else kprobe) ---- */

#define FUNC_STEP(fname, point, argn)                                         \
	SEC("fentry/" #fname)                                                 \
	int BPF_PROG(fentry_##fname) {                                        \
		step_at((struct sk_buff *)ctx[argn], point, NULL, false);     \
		return 0;                                                     \
	}                                                                     \
	SEC("kprobe/" #fname)                                                 \
	int BPF_KPROBE(kprobe_##fname) {                                      \
		step_at((struct sk_buff *)PT_REGS_PARM##argn##_CORE_X(ctx), point, NULL, false); \
		return 0;                                                     \
	}

/* PT_REGS_PARMn is 1-based, fentry's ctx[] 0-based. */
#define PT_REGS_PARM0_CORE_X(x) PT_REGS_PARM1_CORE(x)
#define PT_REGS_PARM2_CORE_X(x) PT_REGS_PARM3_CORE(x)

FUNC_STEP(ip_rcv, PD_POINT_IP_RCV, 0)
FUNC_STEP(ipv6_rcv, PD_POINT_IP_RCV, 0)
FUNC_STEP(ip_forward, PD_POINT_IP_FORWARD, 0)
FUNC_STEP(ip6_forward, PD_POINT_IP_FORWARD, 0)
FUNC_STEP(ip_output, PD_POINT_IP_OUTPUT, 2)
FUNC_STEP(ip6_output, PD_POINT_IP_OUTPUT, 2)

/* ---- route lookups ---- */

static __always_inline bool addr_equal(const __u8 *a, const __u8 *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
	return x[0] == y[0] && x[1] == y[1];
}

/* Appends a route lookup step to the packet this CPU is processing, if
 * the lookup is about its addresses. */
static __always_inline void fib_record(struct pd_step *st)
{
	__u32 zero = 0;
	__u64 *cur = bpf_map_lookup_elem(&cur_skb, &zero);
	if (!cur || !*cur)
		return;
	__u64 key = *cur;
	struct pd_track *tr = bpf_map_lookup_elem(&tracks, &key);
	if (!tr)
		return;
	/* A route lookup inside a netfilter hook (nft fib, rerouting after
	 * NAT) comes after the hook's step: complete that step first, and let
	 * the next bracket start a new one, as the packet moved on. */
	nf_memo_sync(key);
	struct pd_step *prev = last_step(tr);
	if (!prev || prev->t.family != st->t.family)
		return;
	/* This CPU may be routing something else (a socket connect); only
	 * lookups about this packet's addresses belong to its path. */
	if (!addr_equal(st->t.daddr, prev->t.daddr) && !addr_equal(st->t.daddr, prev->t.saddr))
		return;
	st->point = PD_POINT_FIB_LOOKUP;
	st->ts = bpf_ktime_get_ns();
	st->netns = prev->netns;
	/* Several tables are tried in turn; the last answer is the one that
	 * counted, so it replaces the previous lookup of the same key. */
	if (prev->point == PD_POINT_FIB_LOOKUP && tuple_equal(&prev->t, &st->t)) {
		*prev = *st;
		tr->last_ts = st->ts;
		return;
	}
	append(tr, st);
}

SEC("tp_btf/fib_table_lookup")
int BPF_PROG(tpb_fib_table_lookup, u32 tb_id, const struct flowi4 *flp,
	     const struct fib_nh_common *nhc, int err)
{
	if (!following_any())
		return 0;
	struct pd_step st = {};
	__be32 saddr = BPF_CORE_READ(flp, saddr), daddr = BPF_CORE_READ(flp, daddr);
	st.ifindex = BPF_CORE_READ(flp, __fl_common.flowic_iif);
	st.prio = tb_id;
	st.ret = err;
	if (nhc)
		st.aux = BPF_CORE_READ(nhc, nhc_dev, ifindex);
	st.t.family = 4;
	st.t.proto = BPF_CORE_READ(flp, __fl_common.flowic_proto);
	__builtin_memcpy(st.t.saddr, &saddr, 4);
	__builtin_memcpy(st.t.daddr, &daddr, 4);
	fib_record(&st);
	return 0;
}

/* The error an IPv6 route of this type answers with, as the kernel's
 * ip6_rt_type_to_error (fib6_prop) has it; the same as IPv4's. */
static __always_inline __s32 rt6_type_error(__u8 type)
{
	switch (type) {
	case RTN_BLACKHOLE:
	case RTN_BROADCAST:
	case RTN_NAT:
	case RTN_XRESOLVE:
		return -22; /* EINVAL */
	case RTN_UNREACHABLE:
		return -113; /* EHOSTUNREACH */
	case RTN_PROHIBIT:
		return -13; /* EACCES */
	case RTN_THROW:
		return -11; /* EAGAIN */
	}
	return 0;
}

SEC("tp_btf/fib6_table_lookup")
int BPF_PROG(tpb_fib6_table_lookup, const struct net *net, const struct fib6_result *res,
	     struct fib6_table *table, const struct flowi6 *flp)
{
	if (!following_any())
		return 0;
	struct pd_step st = {};
	struct fib6_info *f6i = BPF_CORE_READ(res, f6i);
	st.ifindex = BPF_CORE_READ(flp, __fl_common.flowic_iif);
	st.prio = BPF_CORE_READ(table, tb6_id);
	/* The null entry is "no route in this table" (ENETUNREACH), though
	 * its type says unreachable. */
	if (!f6i || f6i == BPF_CORE_READ(net, ipv6.fib6_null_entry))
		st.ret = -101; /* ENETUNREACH */
	else
		st.ret = rt6_type_error(BPF_CORE_READ(res, fib6_type));
	if (!st.ret)
		st.aux = BPF_CORE_READ(res, nh, nh_common.nhc_dev, ifindex);
	st.t.family = 6;
	st.t.proto = BPF_CORE_READ(flp, __fl_common.flowic_proto);
	BPF_CORE_READ_INTO(&st.t.saddr, flp, saddr);
	BPF_CORE_READ_INTO(&st.t.daddr, flp, daddr);
	fib_record(&st);
	return 0;
}

/* ---- netfilter ---- */

/* Records a netfilter step; returns whether the packet is followed. The
 * hook state is read only for followed packets. */
static __always_inline bool nf_enter(struct sk_buff *skb, const struct nf_hook_state *state,
				     __u8 point, __s32 prio, __s32 ret, const bool btf)
{
	__u8 pf = btf ? state->pf : BPF_CORE_READ(state, pf);
	if (pf != cfg_pf_ipv4 && pf != cfg_pf_ipv6)
		return false; /* bridge, arp, netdev hooks: not on the IP path */
	struct pd_step st = {};
	struct pd_track *tr = track_begin(skb, &st, btf);
	if (!tr)
		return false;
	struct net_device *out = BPF_CORE_READ(state, out); /* pointers: see dev_netns */
	st.point = point;
	st.hook = btf ? state->hook : BPF_CORE_READ(state, hook);
	st.pf = pf;
	st.netns = BPF_CORE_READ(state, net, ns.inum);
	st.prio = prio;
	st.ret = ret;
	if (out)
		st.aux = BPF_CORE_READ(out, ifindex);
	track_step(tr, skb, &st, NULL, btf);
	return true;
}

/* The verdict of nf_hook_slow: 1 continue, 0 stolen/queued, <0 dropped.
 * A changed packet (NAT) gets a step of its own so before → after shows. */
static __always_inline void nf_exit(struct sk_buff *skb, __u8 hook, __u8 pf, __s32 ret)
{
	__u64 key = (__u64)skb;
	struct pd_track *tr = bpf_map_lookup_elem(&tracks, &key);
	if (!tr)
		return;
	struct pd_step *prev = last_step(tr);
	if (!prev || prev->point != PD_POINT_NF_HOOK || prev->hook != hook || prev->pf != pf)
		return;
	prev->ret = ret;
	if (ret < 0)
		return; /* headers may already be gone */
	struct pd_step st = *prev;
	if (parse_skb(skb, &st.t, false) || tuple_equal(&st.t, &prev->t))
		return;
	st.ts = bpf_ktime_get_ns();
	append(tr, &st);
}

SEC("fentry/nf_hook_slow")
int BPF_PROG(fentry_nf_hook_slow, struct sk_buff *skb, struct nf_hook_state *state)
{
	nf_enter(skb, state, PD_POINT_NF_HOOK, 0, PD_VERDICT_PENDING, false);
	return 0;
}

SEC("fexit/nf_hook_slow")
int BPF_PROG(fexit_nf_hook_slow, struct sk_buff *skb, struct nf_hook_state *state,
	     const struct nf_hook_entries *e, unsigned int s, int ret)
{
	nf_exit(skb, BPF_CORE_READ(state, hook), BPF_CORE_READ(state, pf), ret);
	return 0;
}

/* kretprobes see only the return value: remember the arguments. */
struct kret_args {
	__u64 skb;
	__u8 hook;
	__u8 pf;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, struct kret_args);
} kret SEC(".maps");

SEC("kprobe/nf_hook_slow")
int BPF_KPROBE(kprobe_nf_hook_slow, struct sk_buff *skb, struct nf_hook_state *state)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct kret_args a = { .skb = (__u64)skb, .hook = BPF_CORE_READ(state, hook), .pf = BPF_CORE_READ(state, pf) };
	nf_enter(skb, state, PD_POINT_NF_HOOK, 0, PD_VERDICT_PENDING, false);
	bpf_map_update_elem(&kret, &id, &a, BPF_ANY);
	return 0;
}

SEC("kretprobe/nf_hook_slow")
int BPF_KRETPROBE(kretprobe_nf_hook_slow, int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct kret_args *a = bpf_map_lookup_elem(&kret, &id);
	if (!a)
		return 0;
	nf_exit((struct sk_buff *)a->skb, a->hook, a->pf, ret);
	bpf_map_delete_elem(&kret, &id);
	return 0;
}

/* The eight brackets of a hook run back to back for every packet that
 * crosses it, in every namespace: 8 programs × 2-5 hooks per packet is most
 * of pktdrop's cost. Only the first bracket of a hook decides whether the
 * packet is followed and records the hook's step; the next ones on this
 * CPU reuse that answer for the same skb and, for a followed packet, only
 * note the priority reached in the memo (nf_memo in track.h), written to
 * the step once the packet moves on. Addresses and ports change only in
 * the NAT tables, which need conntrack: for a packet with conntrack the
 * brackets right after them (4 after DNAT, 7 after SNAT) decide afresh,
 * so a translated packet still gets a step of its own. */
static __always_inline int nf_link(struct bpf_nf_ctx *ctx, const int i)
{
	struct sk_buff *skb = ctx->skb;
	const struct nf_hook_state *state = ctx->state;
	/* Until a packet is followed no memo is pending, and after the last
	 * bracket none is read. Nor has it anything to decide unless SNAT
	 * just changed the packet (conntrack is then attached): any other
	 * packet was decided by an earlier probe with the same headers (the
	 * hook's first bracket, the device it came in on). In a namespace
	 * without tables it is INPUT's only bracket, run for every packet
	 * delivered there, and a filter that matches nothing pays for it. */
	if (i == 7 && !following_any()) {
		if (skb_ctinfo(skb, true))
			nf_enter(skb, state, PD_POINT_NF_LINK, cfg_nf_prio[i], 0, true);
		return PD_NF_ACCEPT;
	}
	__u32 tag = state->hook | (__u32)state->pf << 8 | 1 << 24;
	struct pd_nf_memos *ms = nf_memos();
	if (!ms)
		return PD_NF_ACCEPT;
	struct pd_nf_memo *m = nf_memo_find(ms, (__u64)skb);
	if (i != 0 && m && m->tag == tag && ((i != 4 && i != 7) || !skb_ctinfo(skb, true))) {
		if (m->tracked) {
			m->prio = cfg_nf_prio[i];
			m->ctinfo = skb_ctinfo(skb, true);
			m->pending = 1;
			set_cur_skb((__u64)skb);
		}
		return PD_NF_ACCEPT;
	}
	if (!m)
		m = &ms->e[ms->next++ & (PD_NF_MEMO_SLOTS - 1)];
	nf_memo_flush(m);
	m->skb = 0;
	/* nf_enter's own sync finds nothing pending; the memo is filled after. */
	bool tracked = nf_enter(skb, state, PD_POINT_NF_LINK, cfg_nf_prio[i], 0, true);
	m->skb = (__u64)skb;
	m->tag = tag;
	m->tracked = tracked;
	m->pending = 0;
	return PD_NF_ACCEPT;
}

/* Netfilter links, one program per bracket so each knows its priority:
 * the last bracket a dropped packet passed names the table that dropped
 * it. */
#define NF_LINK_PROG(i)                                                       \
	SEC("netfilter")                                                      \
	int on_nf_##i(struct bpf_nf_ctx *ctx) {                               \
		return nf_link(ctx, i);                                       \
	}
NF_LINK_PROG(0)
NF_LINK_PROG(1)
NF_LINK_PROG(2)
NF_LINK_PROG(3)
NF_LINK_PROG(4)
NF_LINK_PROG(5)
NF_LINK_PROG(6)
NF_LINK_PROG(7)

/* Which table dropped it: the hook functions of nf_tables and of
 * iptables-legacy return NF_DROP (0 in the low byte) for a drop. */
#define PD_NF_DROP 0
#define PD_NF_VERDICT_MASK 0xff

static __always_inline void note_nf_drop(struct sk_buff *skb, const char *table, const char *chain)
{
	__u64 key = (__u64)skb;
	struct pd_track *tr = bpf_map_lookup_elem(&tracks, &key);
	if (!tr)
		return;
	bpf_probe_read_kernel_str(tr->nf_table, sizeof(tr->nf_table), table);
	tr->nf_chain[0] = 0;
	if (chain)
		bpf_probe_read_kernel_str(tr->nf_chain, sizeof(tr->nf_chain), chain);
}

SEC("fentry/nft_do_chain")
int BPF_PROG(fentry_nft_do_chain, struct nft_pktinfo *pkt, void *priv)
{
	if (!following_any())
		return 0;
	__u32 zero = 0;
	struct pd_nft_cur *c = bpf_map_lookup_elem(&nft_cur, &zero);
	if (!c)
		return 0;
	__u64 key = (__u64)BPF_CORE_READ(pkt, skb);
	c->skb = 0;
	if (!bpf_map_lookup_elem(&tracks, &key))
		return 0;
	struct nft_chain *chain = priv;
	bpf_probe_read_kernel_str(c->table, sizeof(c->table), BPF_CORE_READ(chain, table, name));
	bpf_probe_read_kernel_str(c->chain, sizeof(c->chain), BPF_CORE_READ(chain, name));
	c->skb = key;
	return 0;
}

SEC("fexit/nft_do_chain")
int BPF_PROG(fexit_nft_do_chain, struct nft_pktinfo *pkt, void *priv, unsigned int ret)
{
	__u32 zero = 0;
	struct pd_nft_cur *c = bpf_map_lookup_elem(&nft_cur, &zero);
	if (c)
		c->skb = 0;
	/* Kernels that let nf_hook_slow free the packet free it after this. */
	if ((ret & PD_NF_VERDICT_MASK) != PD_NF_DROP)
		return 0;
	struct nft_chain *chain = priv;
	note_nf_drop(BPF_CORE_READ(pkt, skb), BPF_CORE_READ(chain, table, name), BPF_CORE_READ(chain, name));
	return 0;
}

/* ipt_do_table(priv = struct xt_table *, skb, state) since 5.16; before,
 * ipt_do_table(skb, state, table). Userspace loads the one matching the
 * kernel's BTF. */
SEC("fexit/ipt_do_table")
int BPF_PROG(fexit_ipt_do_table, void *priv, struct sk_buff *skb, const struct nf_hook_state *state, unsigned int ret)
{
	if ((ret & PD_NF_VERDICT_MASK) != PD_NF_DROP)
		return 0;
	struct xt_table *table = priv;
	note_nf_drop(skb, table->name, NULL);
	return 0;
}

SEC("fexit/ipt_do_table")
int BPF_PROG(fexit_ipt_do_table_old, struct sk_buff *skb, const struct nf_hook_state *state,
	     struct xt_table *table, unsigned int ret)
{
	if ((ret & PD_NF_VERDICT_MASK) != PD_NF_DROP)
		return 0;
	note_nf_drop(skb, table->name, NULL);
	return 0;
}

/* ---- reverse path check (rp_filter): its error, where probeable ---- */

SEC("kprobe/fib_validate_source")
int BPF_KPROBE(kprobe_fib_validate_source, struct sk_buff *skb)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct kret_args a = { .skb = (__u64)skb };
	bpf_map_update_elem(&kret, &id, &a, BPF_ANY);
	return 0;
}

SEC("kretprobe/fib_validate_source")
int BPF_KRETPROBE(kretprobe_fib_validate_source, int ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct kret_args *a = bpf_map_lookup_elem(&kret, &id);
	if (!a)
		return 0;
	__u64 skb = a->skb;
	bpf_map_delete_elem(&kret, &id);
	if (ret >= 0 || !bpf_map_lookup_elem(&tracks, &skb))
		return 0;
	struct pd_step st = { .point = PD_POINT_FIB_VALIDATE, .ret = ret };
	record((struct sk_buff *)skb, &st, NULL, false);
	return 0;
}
