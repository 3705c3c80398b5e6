/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* --snaplen: the packet's first bytes, copied into its event for the
 * pcapng file. Tracing programs have no bpf_skb_load_bytes, so the bytes
 * are read from skb->head; only the linear part is read (paged data would
 * need the frags walked), so caplen can be less than asked for. */
#pragma once

/* Copies the packet after the path's nsteps entries; returns how many
 * bytes, and sets cap_len and cap_mac. */
static __always_inline __u32 snap_packet(struct sk_buff *skb, struct pd_event *ev, const bool btf)
{
	unsigned char *head, *data;
	__u16 nh, mh;
	__u32 tail, len;

	/* The scratch event is reused: nothing of the last packet may stay. */
	ev->cap_len = 0;
	ev->cap_mac = 0;
	if (l3_offset(skb, &nh, btf))
		return 0;
	if (btf) {
		head = skb->head;
		data = skb->data;
		mh = skb->mac_header;
		tail = skb->tail;
		len = skb->len;
	} else {
		head = BPF_CORE_READ(skb, head);
		data = BPF_CORE_READ(skb, data);
		mh = BPF_CORE_READ(skb, mac_header);
		tail = BPF_CORE_READ(skb, tail);
		len = BPF_CORE_READ(skb, len);
	}
	/* The MAC header only when it is an Ethernet header right before the
	 * network header: a tunnel device (tunl0, wg0) has none, and a
	 * locally sent packet has none before the neighbour layer. */
	__u32 start = nh;
	if (mh != (__u16)~0U && mh < nh && nh - mh == PD_ETH_HLEN) {
		start = mh;
		ev->cap_mac = 1;
	}
	/* skb->len counts from skb->data, which may lie past the network
	 * header (UDP input) or before it (a pushed MAC header). */
	__s64 orig = (__s64)len + (__s64)(data - head) - (__s64)start;
	if (orig <= 0 || orig > 0xffffffffLL || tail <= start)
		return 0;
	ev->cap_len = (__u32)orig;
	__u32 n = cfg_snaplen;
	if (n > (__u32)orig)
		n = (__u32)orig;
	if (n > tail - start)
		n = tail - start;
	__u32 steps = ev->nsteps;
	if (steps > PD_PATH_MAX)
		steps = PD_PATH_MAX;
	__u8 *dst = (__u8 *)ev + __builtin_offsetof(struct pd_event, path) + steps * sizeof(struct pd_step);
	/* Bounds the verifier can follow: the compiler keeps the earlier
	 * minimums in forms it does not track. */
	__u64 size = n;
	asm volatile("" : "+r"(size));
	if (size > PD_SNAP_MAX)
		return 0;
	if (bpf_probe_read_kernel(dst, size, head + start))
		return 0;
	return size;
}
