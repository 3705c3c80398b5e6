/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Building and sending events: one per dropped (or, when tracing,
 * consumed) packet, carrying the path recorded for it. */
#pragma once

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* userspace sets --ringbuf-size */
} events SEC(".maps");

/* Events are built here: struct pd_event is too large for the stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pd_event_buf);
} scratch SEC(".maps");

/* Only the filled part of the path is sent, so an event without a path
 * costs a few hundred bytes, not the full struct. */
static __always_inline void send(struct pd_event *ev)
{
	__u64 size = __builtin_offsetof(struct pd_event, path) +
		     (__u64)ev->nsteps * sizeof(struct pd_step);
	if (size > sizeof(*ev))
		size = sizeof(*ev);
	/* Without --snaplen caplen is never written: it stays 0. */
	if (cfg_snaplen)
		size += ev->caplen <= PD_SNAP_MAX ? ev->caplen : 0;
	/* By default every event whose ring was empty wakes the reader: with a
	 * reader that keeps up, that is one wakeup (an irq_work here, often an
	 * IPI, and a context switch there) per event. Instead the reader
	 * polls on a short timer, and is woken each time the backlog crosses
	 * a multiple of cfg_wakeup_bytes: once when a burst builds up, and
	 * again further on should two CPUs race past one multiple unseen. A
	 * reader still behind needs no wakeup: it is not sleeping. */
	__u64 flags = 0;
	if (cfg_wakeup_bytes) {
		__u64 avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
		flags = avail / cfg_wakeup_bytes != (avail + size) / cfg_wakeup_bytes ? BPF_RB_FORCE_WAKEUP
										       : BPF_RB_NO_WAKEUP;
	}
	if (bpf_ringbuf_output(&events, ev, size, flags)) {
		count(PD_CNT_LOST);
		return;
	}
	count(PD_CNT_EVENTS);
}

static __always_inline void copy_path(struct pd_event *ev, struct pd_track *tr)
{
	__u32 n = tr->n, start = 0, cnt = n;
	if (n > PD_PATH_MAX) {
		start = n & (PD_PATH_MAX - 1);
		cnt = PD_PATH_MAX;
		ev->steps_lost = n - PD_PATH_MAX > 255 ? 255 : n - PD_PATH_MAX;
	}
	/* A bounded loop (kernel ≥5.3): unrolled, 16 struct copies bloat
	 * every program that frees a packet. */
	for (int i = 0; i < PD_PATH_MAX; i++) {
		if (i >= cnt)
			break;
		ev->path[i] = tr->steps[(start + i) & (PD_PATH_MAX - 1)];
	}
	ev->nsteps = cnt;
}

/* What tells a benign free from a drop, read while it is still true. */
static __always_inline void skb_facts(struct pd_event *ev, struct sk_buff *skb, struct sock *rx_sk)
{
	__u8 facts = 0;
	if (BPF_CORE_READ_BITFIELD_PROBED(skb, cloned)) {
		facts |= PD_FACT_CLONED;
		/* skb_shinfo(skb)->dataref: its low 16 bits count the skbs
		 * sharing the data (64-bit kernels keep end as an offset). */
		unsigned char *head = BPF_CORE_READ(skb, head);
		__u32 end = BPF_CORE_READ(skb, end);
		struct skb_shared_info *sh = (struct skb_shared_info *)(head + end);
		int dataref = BPF_CORE_READ(sh, dataref.counter);
		if ((dataref & 0xffff) > 1)
			facts |= PD_FACT_SHARED;
	}
	struct sock *sk = rx_sk;
	if (sk)
		facts |= PD_FACT_RX_SK;
	else if ((sk = BPF_CORE_READ(skb, sk)))
		facts |= PD_FACT_SKB_SK;
	ev->sk_state = sk ? BPF_CORE_READ(sk, __sk_common.skc_state) + 1 : 0;
	ev->facts = facts;
}

/* The end of a packet: report it if it is a drop that passes the filters,
 * or a consumed packet that was followed (trace). Always forgets the skb. */
static __always_inline void on_free(struct sk_buff *skb, __u64 location, __u32 reason, __u8 kind, struct sock *rx_sk,
				    const bool btf)
{
	__u64 key = (__u64)skb;
	bool any = cfg_path && following_any();
	if (any)
		nf_memo_sync(key); /* dropped inside a hook: its step's last priority */
	struct pd_track *tr = any ? bpf_map_lookup_elem(&tracks, &key) : NULL;
	__u32 zero = 0;
	struct pd_event *ev;

	if (kind == PD_KIND_TRACE && (!tr || !cfg_trace))
		goto out;
	struct pd_event_buf *buf = bpf_map_lookup_elem(&scratch, &zero);
	if (!buf)
		goto out;
	ev = &buf->ev;
	__builtin_memset(&ev->t, 0, sizeof(ev->t));
	if (parse_skb(skb, &ev->t, btf) && !tr)
		goto out;
	if (!tr && !tuple_match(&ev->t))
		goto out;
	if (kind == PD_KIND_DROP && !reason_match(reason))
		goto out;

	struct net_device *dev = BPF_CORE_READ(skb, dev);
	__builtin_memset(ev->ifname, 0, sizeof(ev->ifname));
	ev->ifindex = 0;
	if (dev) {
		bpf_probe_read_kernel_str(ev->ifname, sizeof(ev->ifname), dev->name);
		ev->ifindex = BPF_CORE_READ(dev, ifindex);
	}
	if (!ifname_match(ev->ifname))
		goto out;
	ev->netns = skb_netns(skb, btf);
	if (cfg_netns && ev->netns != netns_want)
		goto out;

	ev->ts = bpf_ktime_get_ns();
	ev->skb = key;
	ev->location = location;
	ev->reason = reason;
	ev->mark = btf ? skb->mark : BPF_CORE_READ(skb, mark);
	ev->len = btf ? skb->len : BPF_CORE_READ(skb, len);
	ev->cpu = bpf_get_smp_processor_id();
	ev->kind = kind;
	ev->ctinfo = skb_ctinfo(skb, btf);
	ev->nsteps = 0;
	ev->steps_lost = 0;
	__builtin_memset(ev->nf_table, 0, sizeof(ev->nf_table));
	__builtin_memset(ev->nf_chain, 0, sizeof(ev->nf_chain));
	if (tr) {
		__builtin_memcpy(ev->nf_table, tr->nf_table, sizeof(ev->nf_table));
		__builtin_memcpy(ev->nf_chain, tr->nf_chain, sizeof(ev->nf_chain));
		copy_path(ev, tr);
	}
	ev->sk_state = 0;
	ev->facts = 0;
	ev->_pad = 0;
	if (kind == PD_KIND_DROP) {
		skb_facts(ev, skb, rx_sk);
		nft_chain_names(key, ev->nf_table, ev->nf_chain);
		count(PD_CNT_DROPS_SEEN);
	}
	if (cfg_snaplen)
		ev->caplen = snap_packet(skb, ev, btf);
	send(ev);
out:
	if (tr)
		bpf_map_delete_elem(&tracks, &key);
}
