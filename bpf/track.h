/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Following a packet: each skb that matched the filters gets an entry
 * keyed by its address, holding its last PD_PATH_MAX steps. LRU, so entries
 * whose free we never see (skbs freed without a tracepoint) age out instead
 * of leaking. */
#pragma once

/* A step older than this belongs to an earlier skb at the same address. */
#define PD_TRACK_STALE_NS (2ULL * 1000 * 1000 * 1000)

struct pd_track {
	__u64 last_ts;
	__u32 n; /* steps ever appended; slot = n % PD_PATH_MAX */
	__u32 _pad;
	char nf_table[PD_NFNAMSIZ];
	char nf_chain[PD_NFNAMSIZ];
	struct pd_step steps[PD_PATH_MAX];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096); /* ~3 KiB each: 12 MiB of kernel memory */
	__type(key, __u64);
	__type(value, struct pd_track);
} tracks SEC(".maps");

/* Zeroed template for new entries (too large for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pd_track);
} track_zero SEC(".maps");

/* The skb this CPU last saw, so route lookups (which have no skb) can be
 * attached to the packet being routed. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cur_skb SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, PD_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);
	if (v)
		*v += 1;
}

static __always_inline bool tuple_equal(const struct pd_tuple *a, const struct pd_tuple *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;
#pragma unroll
	for (int i = 0; i < sizeof(struct pd_tuple) / 8; i++)
		if (x[i] != y[i])
			return false;
	return true;
}

static __always_inline struct pd_step *last_step(struct pd_track *tr)
{
	if (tr->n == 0)
		return NULL;
	return &tr->steps[(tr->n - 1) & (PD_PATH_MAX - 1)];
}

static __always_inline void append(struct pd_track *tr, const struct pd_step *st)
{
	__u32 slot = tr->n & (PD_PATH_MAX - 1);
	tr->steps[slot] = *st;
	tr->n++;
	tr->last_ts = st->ts;
}

/* Set once the first packet is followed, never cleared. Until then no
 * entry can exist, and the probes skip every lookup for a packet that does
 * not match the filters: with a filter that matches little, that is what
 * every packet on the machine costs. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} following SEC(".maps");

static __always_inline bool following_any(void)
{
	__u32 zero = 0;
	__u32 *on = bpf_map_lookup_elem(&following, &zero);
	return on && *on;
}

static __always_inline void following_start(void)
{
	__u32 zero = 0;
	__u32 *on = bpf_map_lookup_elem(&following, &zero);
	if (on && !*on)
		*on = 1;
}

/* What the netfilter link brackets know about the packet at the current
 * hook on this CPU (see nf_link in pktdrop.c): whether it is followed and,
 * if so, the highest bracket passed since its step was recorded. */
struct pd_nf_memo {
	__u64 skb;
	__u32 tag;     /* hook | pf << 8 | 1 << 24 */
	__u8 tracked;  /* the packet is followed */
	__u8 pending;  /* prio and ctinfo are not yet in the step */
	__u8 ctinfo;
	__u8 _pad;
	__s32 prio;
	__u32 _pad2;
};

/* A few per CPU: a softirq that runs another packet through its hooks in
 * the middle of this one's (TCP ACKs under a sender) then takes another
 * slot instead of evicting this packet's memo. Found by comparing skb
 * addresses: the verifier allows no arithmetic on an skb pointer, so
 * they cannot be hashed. */
#define PD_NF_MEMO_SLOTS 4

struct pd_nf_memos {
	struct pd_nf_memo e[PD_NF_MEMO_SLOTS];
	__u32 next; /* slot to reuse next, round robin */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pd_nf_memos);
} nf_memo SEC(".maps");

static __always_inline struct pd_nf_memos *nf_memos(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&nf_memo, &zero);
}

/* The slot holding skb, or NULL. */
static __always_inline struct pd_nf_memo *nf_memo_find(struct pd_nf_memos *ms, __u64 skb)
{
#pragma unroll
	for (int i = 0; i < PD_NF_MEMO_SLOTS; i++)
		if (ms->e[i].skb == skb)
			return &ms->e[i];
	return NULL;
}

/* Writes the priority the memo's packet reached into its hook step. */
static __always_inline void nf_memo_flush(struct pd_nf_memo *m)
{
	if (!m->pending)
		return;
	m->pending = 0;
	__u64 key = m->skb;
	struct pd_track *tr = bpf_map_lookup_elem(&tracks, &key);
	if (!tr)
		return;
	struct pd_step *prev = last_step(tr);
	if (prev && prev->point == PD_POINT_NF_LINK && prev->hook == (__u8)m->tag && prev->pf == (__u8)(m->tag >> 8)) {
		prev->prio = m->prio;
		prev->ctinfo = m->ctinfo;
	}
}

/* Called before anything else records skb or reports it: the hook it was
 * in is over, so its step is completed and the memo forgets the packet. */
static __always_inline void nf_memo_sync(__u64 skb)
{
	struct pd_nf_memos *ms = nf_memos();
	if (!ms)
		return;
	struct pd_nf_memo *m = nf_memo_find(ms, skb);
	if (!m)
		return;
	nf_memo_flush(m);
	m->skb = 0;
}

static __always_inline bool nf_point(__u8 point)
{
	return point == PD_POINT_NF_LINK || point == PD_POINT_NF_HOOK;
}

/* Past the INPUT hook a packet belongs to a local socket: nothing but its
 * free follows. */
static __always_inline bool delivered(const struct pd_step *s)
{
	return nf_point(s->point) && s->hook == bpf_core_enum_value(enum nf_inet_hooks, NF_INET_LOCAL_IN);
}

static __always_inline bool nf_hook_is(const struct pd_step *s, __u8 hook)
{
	return nf_point(s->point) && s->hook == hook;
}

/* Where a packet made by this host's own stack is first seen: its
 * LOCAL_OUT hook, or ip_output when no forwarding came before. */
static __always_inline bool local_out(const struct pd_step *s)
{
	return s->point == PD_POINT_IP_OUTPUT ||
	       nf_hook_is(s, bpf_core_enum_value(enum nf_inet_hooks, NF_INET_LOCAL_OUT));
}

/* Steps of the receiving side, before any forwarding decision. */
static __always_inline bool input_side(const struct pd_step *s)
{
	return s->point == PD_POINT_NETIF_RECEIVE || s->point == PD_POINT_IP_RCV ||
	       nf_hook_is(s, bpf_core_enum_value(enum nf_inet_hooks, NF_INET_PRE_ROUTING)) ||
	       nf_hook_is(s, bpf_core_enum_value(enum nf_inet_hooks, NF_INET_LOCAL_IN));
}

/* The last step that is not a route lookup (lookups happen on both sides
 * and say nothing about which one the packet is on). */
static __always_inline struct pd_step *last_real_step(struct pd_track *tr)
{
#pragma unroll
	for (__u32 back = 1; back <= 3; back++) {
		if (tr->n < back)
			return NULL;
		struct pd_step *s = &tr->steps[(tr->n - back) & (PD_PATH_MAX - 1)];
		if (s->point != PD_POINT_FIB_LOOKUP && s->point != PD_POINT_FIB_VALIDATE)
			return s;
	}
	return NULL;
}

static __always_inline bool same_hook(const struct pd_step *a, const struct pd_step *b)
{
	return nf_point(b->point) && a->hook == b->hook && a->netns == b->netns;
}

static __always_inline void forget(struct pd_track *tr)
{
	tr->n = 0;
	tr->nf_table[0] = 0;
	tr->nf_chain[0] = 0;
}

/* Returns the packet's entry, creating it when the packet matches the
 * filters. st->t must already be parsed; st->ts is set when an entry is
 * returned. The clock is read only then: most packets match nothing. */
static __always_inline struct pd_track *track_get(__u64 key, struct pd_step *st)
{
	struct pd_track *tr = bpf_map_lookup_elem(&tracks, &key);
	if (tr) {
		st->ts = bpf_ktime_get_ns();
		if (st->ts - tr->last_ts < PD_TRACK_STALE_NS)
			return tr;
		/* Address reused by a new skb: start over, if it matches. */
		forget(tr);
		if (!tuple_match(&st->t)) {
			bpf_map_delete_elem(&tracks, &key);
			return NULL;
		}
		return tr;
	}
	if (!tuple_match(&st->t))
		return NULL;
	st->ts = bpf_ktime_get_ns();
	__u32 zero = 0;
	struct pd_track *tmpl = bpf_map_lookup_elem(&track_zero, &zero);
	if (!tmpl)
		return NULL;
	following_start();
	/* Fails only if another CPU created it first; the lookup settles it. */
	bpf_map_update_elem(&tracks, &key, tmpl, BPF_NOEXIST);
	tr = bpf_map_lookup_elem(&tracks, &key);
	if (!tr)
		count(PD_CNT_TRACK_FULL);
	return tr;
}

static __always_inline void set_cur_skb(__u64 skb)
{
	__u32 zero = 0;
	__u64 *cur = bpf_map_lookup_elem(&cur_skb, &zero);
	if (cur)
		*cur = skb;
}

/* First half of record(): parses the packet and finds its entry, creating
 * it when the packet matches the filters. NULL: the packet is not
 * followed, and the caller can skip everything else. */
static __always_inline struct pd_track *track_begin(struct sk_buff *skb, struct pd_step *st, const bool btf)
{
	if (!cfg_path)
		return NULL;
	__u64 key = (__u64)skb;
	bool any = following_any();
	if (any) {
		set_cur_skb(key);
		nf_memo_sync(key);
	}
	if (parse_skb(skb, &st->t, btf))
		return NULL;
	if (!any) {
		if (!tuple_match(&st->t))
			return NULL; /* nothing followed, and not this one either */
		set_cur_skb(key);
	}
	return track_get(key, st);
}

/* Second half of record(): fills the rest of the step and appends it. The
 * caller fills point and the point-specific fields. */
static __always_inline void track_step(struct pd_track *tr, struct sk_buff *skb, struct pd_step *st,
				       struct net_device *dev, const bool btf)
{
	if (!dev)
		dev = BPF_CORE_READ(skb, dev); /* pointers: see dev_netns */
	if (dev) {
		st->ifindex = BPF_CORE_READ(dev, ifindex);
		if (!st->netns)
			st->netns = dev_netns(dev, btf);
	}
	if (!st->netns)
		st->netns = skb_netns(skb, btf);
	st->mark = btf ? skb->mark : BPF_CORE_READ(skb, mark);
	st->ctinfo = skb_ctinfo(skb, btf);

	struct pd_step *prev = last_step(tr);
	struct pd_step *real = local_out(st) ? last_real_step(tr) : NULL;
	if (prev && ((delivered(prev) && !same_hook(prev, st)) || (real && input_side(real)))) {
		/* The previous packet at this address was delivered to a local
		 * socket and freed where no tracepoint sees it (TCP frees with
		 * __kfree_skb): this is a new packet, not more of its path. A
		 * namespace without an INPUT hook shows the delivery only by
		 * what comes next: a packet of its own stack going out, with
		 * no forwarding in between. */
		forget(tr);
		if (!tuple_match(&st->t)) {
			__u64 key = (__u64)skb;
			bpf_map_delete_elem(&tracks, &key);
			return;
		}
		prev = NULL;
	}

	/* A netfilter hook bracketed by several links is one step: keep the
	 * highest priority reached, unless the packet changed (NAT). */
	if (prev && st->point == PD_POINT_NF_LINK && prev->point == PD_POINT_NF_LINK &&
	    prev->hook == st->hook && prev->pf == st->pf && prev->netns == st->netns &&
	    tuple_equal(&prev->t, &st->t)) {
		prev->prio = st->prio;
		prev->ctinfo = st->ctinfo;
		tr->last_ts = st->ts;
		return;
	}
	append(tr, st);
}

/* Records one step of a packet's path and applies the filters. */
static __always_inline void record(struct sk_buff *skb, struct pd_step *st, struct net_device *dev, const bool btf)
{
	struct pd_track *tr = track_begin(skb, st, btf);
	if (tr)
		track_step(tr, skb, st, dev, btf);
}

/* The nf_tables base chain this CPU is evaluating for a followed skb
 * (fentry/fexit nft_do_chain). Since 5.x nf_tables frees a dropped packet
 * inside nft_do_chain, before any fexit could name the chain: the free
 * takes the names from here. They are copied at fentry, so that the free
 * needs no nf_tables type (those live in the module's BTF). */
struct pd_nft_cur {
	__u64 skb; /* 0 outside a chain */
	char table[PD_NFNAMSIZ];
	char chain[PD_NFNAMSIZ];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pd_nft_cur);
} nft_cur SEC(".maps");

static __always_inline void nft_chain_names(__u64 skb, char *table, char *chain)
{
	__u32 zero = 0;
	struct pd_nft_cur *c = bpf_map_lookup_elem(&nft_cur, &zero);
	if (!c || !c->skb || c->skb != skb)
		return;
	__builtin_memcpy(table, c->table, PD_NFNAMSIZ);
	__builtin_memcpy(chain, c->chain, PD_NFNAMSIZ);
}
