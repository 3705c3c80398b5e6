/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reading the packet headers out of an skb, with CO-RE, in any program
 * type (tracing, tracepoint, kprobe, netfilter). */
#pragma once

#include "expr.h"

#define PD_ETH_HLEN 14
#define PD_ETH_P_IP 0x0800
#define PD_ETH_P_IPV6 0x86DD
#define PD_IPPROTO_ICMP 1
#define PD_IPPROTO_TCP 6
#define PD_IPPROTO_UDP 17
#define PD_IPPROTO_ICMPV6 58
#define PD_IPPROTO_SCTP 132

/* btf: the caller holds a BTF-typed skb (tp_btf and netfilter programs), so
 * kernel fields can be read with plain loads, which the verifier guards,
 * instead of one bpf_probe_read_kernel call each: several times cheaper,
 * and these reads run for every packet at every probe point. The argument
 * is always a constant, so each program keeps only one of the two ways. */

/* Offset of the IP header from skb->head. network_header is only set once
 * the stack has looked at the packet; before that (NIC receive) fall back
 * to the Ethernet header. */
static __always_inline int l3_offset(struct sk_buff *skb, __u16 *off, const bool btf)
{
	__u16 nh, mh;

	if (btf) {
		nh = skb->network_header;
		mh = skb->mac_header;
	} else {
		nh = BPF_CORE_READ(skb, network_header);
		mh = BPF_CORE_READ(skb, mac_header);
	}
	if (nh != 0 && nh != (__u16)~0U) {
		*off = nh;
		return 0;
	}
	if (mh == (__u16)~0U)
		return -1;
	*off = mh + PD_ETH_HLEN;
	return 0;
}

static __always_inline void parse_l4(unsigned char *l4, __u8 proto, struct pd_tuple *t)
{
	t->proto = proto;
	if (proto == PD_IPPROTO_TCP) {
		struct tcphdr th;
		if (bpf_probe_read_kernel(&th, sizeof(th), l4))
			return;
		t->sport = bpf_ntohs(th.source);
		t->dport = bpf_ntohs(th.dest);
		t->tcp_flags = ((__u8 *)&th)[13];
	} else if (proto == PD_IPPROTO_UDP || proto == PD_IPPROTO_SCTP) {
		/* SCTP's common header starts with the ports too. */
		struct udphdr uh;
		if (bpf_probe_read_kernel(&uh, sizeof(uh), l4))
			return;
		t->sport = bpf_ntohs(uh.source);
		t->dport = bpf_ntohs(uh.dest);
	} else if (proto == PD_IPPROTO_ICMP || proto == PD_IPPROTO_ICMPV6) {
		__u8 h[8];
		if (bpf_probe_read_kernel(h, sizeof(h), l4))
			return;
		t->icmp_type = h[0];
		t->icmp_code = h[1];
		t->icmp_id = ((__u16)h[4] << 8) | h[5];
		t->icmp_seq = ((__u16)h[6] << 8) | h[7];
	}
}

/* L4 ports, flags or ICMP fields from bytes already copied to the stack. */
static __always_inline void parse_l4_buf(const __u8 *h, __u8 proto, struct pd_tuple *t)
{
	t->proto = proto;
	if (proto == PD_IPPROTO_TCP) {
		t->sport = ((__u16)h[0] << 8) | h[1];
		t->dport = ((__u16)h[2] << 8) | h[3];
		t->tcp_flags = h[13];
	} else if (proto == PD_IPPROTO_UDP || proto == PD_IPPROTO_SCTP) {
		t->sport = ((__u16)h[0] << 8) | h[1];
		t->dport = ((__u16)h[2] << 8) | h[3];
	} else if (proto == PD_IPPROTO_ICMP || proto == PD_IPPROTO_ICMPV6) {
		t->icmp_type = h[0];
		t->icmp_code = h[1];
		t->icmp_id = ((__u16)h[4] << 8) | h[5];
		t->icmp_seq = ((__u16)h[6] << 8) | h[7];
	}
}

/* Bytes read at the network header in one go: an IPv6 header plus the
 * start of TCP (flags at byte 13), or an option-less IPv4 header plus
 * L4. Reading past the packet's end stays inside the skb's head buffer,
 * which skb_shared_info always follows, so the read cannot fault where
 * the header itself is readable. */
#define PD_HDR_READ 64

/* Fills t from the skb; returns 0 for an IPv4/IPv6 packet. */
static __always_inline int parse_skb(struct sk_buff *skb, struct pd_tuple *t, const bool btf)
{
	unsigned char *head = btf ? skb->head : BPF_CORE_READ(skb, head);
	__u8 h[PD_HDR_READ];
	__u16 off;

	if (l3_offset(skb, &off, btf))
		return -1;
	/* One helper call instead of three (version, header, L4). */
	if (bpf_probe_read_kernel(h, sizeof(h), head + off))
		return -1;

	if ((h[0] >> 4) == 4) {
		struct iphdr *ip = (struct iphdr *)h;
		__u8 ihl = h[0] & 0xf;
		t->family = 4;
		t->ttl = ip->ttl;
		__builtin_memcpy(t->saddr, &ip->saddr, 4);
		__builtin_memcpy(t->daddr, &ip->daddr, 4);
		t->proto = ip->protocol;
		/* Only the first fragment carries the L4 header. */
		if (ip->frag_off & bpf_htons(0x1fff))
			return 0;
		if (ihl == 5)
			parse_l4_buf(h + 20, ip->protocol, t);
		else
			parse_l4(head + off + ihl * 4, ip->protocol, t);
		return 0;
	}
	if ((h[0] >> 4) == 6) {
		struct ipv6hdr *ip6 = (struct ipv6hdr *)h;
		t->family = 6;
		t->ttl = ip6->hop_limit;
		__builtin_memcpy(t->saddr, &ip6->saddr, 16);
		__builtin_memcpy(t->daddr, &ip6->daddr, 16);
		parse_l4_buf(h + sizeof(*ip6), ip6->nexthdr, t);
		return 0;
	}
	return -1;
}

static __always_inline bool prefix_match(const volatile __u8 *net, __u8 plen, const __u8 *addr)
{
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (plen == 0)
			return true;
		__u8 mask = plen >= 8 ? 0xff : (__u8)(0xff << (8 - plen));
		if ((addr[i] ^ net[i]) & mask)
			return false;
		plen = plen >= 8 ? plen - 8 : 0;
	}
	return true;
}

/* The tuple part of the filters: what decides whether a packet is followed. */
static __always_inline bool tuple_match(const struct pd_tuple *t)
{
	if (t->family == 0)
		return false;
	if (cfg_family && t->family != cfg_family)
		return false;
	if (cfg_proto && t->proto != cfg_proto)
		return false;
	if (cfg_src_on && (t->family != cfg_src_fam || !prefix_match(cfg_src_addr, cfg_src_plen, t->saddr)))
		return false;
	if (cfg_dst_on && (t->family != cfg_dst_fam || !prefix_match(cfg_dst_addr, cfg_dst_plen, t->daddr)))
		return false;
	if (cfg_host_on && (t->family != cfg_host_fam ||
			    (!prefix_match(cfg_host_addr, cfg_host_plen, t->saddr) &&
			     !prefix_match(cfg_host_addr, cfg_host_plen, t->daddr))))
		return false;
	if (cfg_sport && t->sport != cfg_sport)
		return false;
	if (cfg_dport && t->dport != cfg_dport)
		return false;
	if (cfg_port && t->sport != cfg_port && t->dport != cfg_port)
		return false;
	if (cfg_expr_on && !expr_match(t))
		return false;
	return true;
}

/* Picks bitmap word w with constant indexes only: a variable offset into
 * .rodata is refused by some verifiers. */
static __always_inline __u64 reason_word(const volatile __u64 *bm, __u32 w)
{
	switch (w) {
	case 0: return bm[0];
	case 1: return bm[1];
	case 2: return bm[2];
	default: return bm[3];
	}
}

static __always_inline bool reason_match(__u32 reason)
{
	if (reason < 256) {
		__u64 bit = 1ULL << (reason & 63);
		if (reason_word(cfg_reason_excl, reason >> 6) & bit)
			return false;
		if (cfg_reason_incl_on && !(reason_word(cfg_reason_incl, reason >> 6) & bit))
			return false;
		return true;
	}
	return !cfg_reason_incl_on;
}

static __always_inline bool ifname_match(const char *name)
{
	if (cfg_ifname[0] == 0)
		return true;
#pragma unroll
	for (int i = 0; i < 16; i++) {
		if (name[i] != cfg_ifname[i])
			return false;
		if (name[i] == 0)
			return true;
	}
	return true;
}

/* Pointers are followed with CO-RE reads even where plain loads would do:
 * the verifier checks each load of a kernel pointer against its list of
 * trusted types by a linear search of the kernel's BTF, which multiplied
 * by the paths it explores made loading several times slower. These run
 * only for followed packets. */
static __always_inline __u32 dev_netns(struct net_device *dev, const bool btf)
{
	return BPF_CORE_READ(dev, nd_net.net, ns.inum);
}

static __always_inline __u32 skb_netns(struct sk_buff *skb, const bool btf)
{
	struct net_device *dev = BPF_CORE_READ(skb, dev);
	if (dev)
		return dev_netns(dev, btf);
	struct sock *sk = BPF_CORE_READ(skb, sk);
	if (sk)
		return BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum);
	return 0;
}

/* enum ip_conntrack_info + 1, or 0 when conntrack has not seen the packet. */
static __always_inline __u8 skb_ctinfo(struct sk_buff *skb, const bool btf)
{
	if (!bpf_core_field_exists(skb->_nfct))
		return 0;
	unsigned long nfct = btf ? skb->_nfct : BPF_CORE_READ(skb, _nfct);
	if (!nfct)
		return 0;
	return (nfct & 7) + 1;
}
