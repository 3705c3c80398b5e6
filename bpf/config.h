/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Filters and settings, written by userspace before load
 * (internal/filter.Constants). The verifier sees them as constants, so a
 * filter that is off costs nothing. */
#pragma once

const volatile __u8 cfg_proto = 0;
const volatile __u8 cfg_family = 0;
const volatile __u8 cfg_src_on = 0, cfg_dst_on = 0, cfg_host_on = 0;
const volatile __u8 cfg_src_fam = 0, cfg_dst_fam = 0, cfg_host_fam = 0;
const volatile __u8 cfg_src_plen = 0, cfg_dst_plen = 0, cfg_host_plen = 0;
const volatile __u8 cfg_src_addr[16] = {}, cfg_dst_addr[16] = {}, cfg_host_addr[16] = {};
const volatile __u16 cfg_port = 0, cfg_sport = 0, cfg_dport = 0;
const volatile char cfg_ifname[16] = {};
/* --netns/--pod: cfg_netns turns the filter on; the namespace itself is
 * netns_want, a global userspace may change while running (a pod whose
 * sandbox is replaced moves to a new namespace). */
const volatile __u32 cfg_netns = 0;
__u32 netns_want = 0;
const volatile __u8 cfg_reason_incl_on = 0;
const volatile __u64 cfg_reason_incl[4] = {};
const volatile __u64 cfg_reason_excl[4] = {};

/* 1: follow each matching packet through the path probes. */
const volatile __u8 cfg_path = 1;
/* 1: also report tracked packets that were consumed, not dropped. */
const volatile __u8 cfg_trace = 0;
/* Priority of each netfilter link program (on_nf_0 .. on_nf_7); userspace
 * derives them from the kernel's nf_ip_hook_priorities. */
const volatile __s32 cfg_nf_prio[8] = {};
/* NFPROTO_IPV4 and NFPROTO_IPV6 (UAPI, linux/netfilter.h; the kernel's
 * enum is anonymous, so CO-RE cannot relocate it): only hooks of these
 * families are IP hooks. br_netfilter runs bridge hooks on the same skb,
 * and NF_BR_LOCAL_IN has NF_INET_LOCAL_IN's number. */
const volatile __u8 cfg_pf_ipv4 = 0, cfg_pf_ipv6 = 0;
/* Wake the event reader only once this many bytes wait in the ring buffer
 * (it polls on a timer meanwhile); 0 wakes it for every event. */
const volatile __u64 cfg_wakeup_bytes = 0;
/* --snaplen: copy up to this many bytes of each reported packet into its
 * event (at most PD_SNAP_MAX); 0, the default, copies nothing. */
const volatile __u32 cfg_snaplen = 0;
