/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The one definition of what BPF sends to userspace. Go gets these types
 * from bpf2go (-type), so never mirror them by hand in Go. */
#pragma once

#define PD_PATH_MAX 32
#define PD_IFNAMSIZ 16
#define PD_NFNAMSIZ 32

enum pd_kind {
	PD_KIND_DROP = 1,  /* kfree_skb with a real drop reason */
	PD_KIND_TRACE = 2, /* a tracked packet consumed normally (pktdrop trace) */
};

/* Where a path step was observed. Order is not meaningful. */
enum pd_point {
	PD_POINT_NONE = 0,
	PD_POINT_NETIF_RECEIVE = 1, /* net:netif_receive_skb */
	PD_POINT_IP_RCV = 2,        /* ip_rcv / ipv6_rcv entry */
	PD_POINT_NF_HOOK = 3,       /* nf_hook_slow: hook, verdict in ret */
	PD_POINT_NF_LINK = 4,       /* netfilter link; prio = highest priority reached */
	PD_POINT_FIB_LOOKUP = 5,    /* fib:fib_table_lookup, fib6:fib6_table_lookup; t = lookup key */
	PD_POINT_FIB_VALIDATE = 6,  /* fib_validate_source exit; ret = error */
	PD_POINT_IP_FORWARD = 7,    /* ip_forward / ip6_forward entry */
	PD_POINT_IP_OUTPUT = 8,     /* ip_output / ip6_output entry */
	PD_POINT_DEV_QUEUE = 9,     /* net:net_dev_queue */
	PD_POINT_DEV_XMIT = 10,     /* net:net_dev_start_xmit */
	PD_POINT_DROP = 11,         /* kfree_skb */
	PD_POINT_CONSUME = 12,      /* consume_skb */
};

/* What the free saw of the packet's socket and copies (pd_event.facts). */
enum pd_skb_fact {
	PD_FACT_CLONED = 1, /* skb->cloned: a copy was made (a raw socket's, say) */
	PD_FACT_RX_SK = 2,  /* sk_state is the receiving socket the kernel passed (kfree_skb's rx_sk) */
	PD_FACT_SKB_SK = 4, /* sk_state is skb->sk's: the packet was owned by a socket */
	PD_FACT_SHARED = 8, /* a clone still held the data at the free (a socket had queued its copy) */
};

/* Counters in the per-CPU array "counters". */
enum pd_counter {
	PD_CNT_EVENTS = 0,      /* events written to the ring buffer */
	PD_CNT_LOST = 1,        /* ring buffer reservation/output failures */
	PD_CNT_TRACK_FULL = 2,  /* path tracking entries that could not be created */
	PD_CNT_DROPS_SEEN = 3,  /* drops that matched the filters (sent or lost) */
	PD_CNT_MAX = 4,
};

struct pd_tuple {
	__u8 saddr[16]; /* IPv4 uses the first 4 bytes */
	__u8 daddr[16];
	__u16 sport;    /* host byte order */
	__u16 dport;
	__u16 icmp_id;
	__u16 icmp_seq;
	__u8 family;    /* 4, 6, or 0 when not an IP packet */
	__u8 proto;     /* IPPROTO_* */
	__u8 icmp_type;
	__u8 icmp_code;
	__u8 tcp_flags;
	__u8 ttl;
	__u16 _pad;
};

struct pd_step {
	__u64 ts;
	__u32 netns;
	__u32 ifindex;  /* device; for FIB_LOOKUP the input interface */
	__u8 point;     /* enum pd_point */
	__u8 hook;      /* NF_INET_* for netfilter points */
	__u8 pf;        /* NFPROTO_* for netfilter points */
	__u8 ctinfo;    /* enum ip_conntrack_info + 1, 0 = no conntrack */
	__s32 prio;     /* NF_LINK: highest priority reached; FIB_LOOKUP: table id */
	__s32 ret;      /* NF_HOOK: verdict; FIB_*: error; else 0 */
	__u32 aux;      /* FIB_LOOKUP: result device ifindex */
	__u32 mark;
	__u32 _pad;
	struct pd_tuple t;
};

struct pd_event {
	__u64 ts;       /* CLOCK_MONOTONIC ns */
	__u64 skb;
	__u64 location; /* kernel address of the free */
	__u32 reason;   /* enum skb_drop_reason value, 0 when the kernel has none */
	__u32 netns;
	__u32 ifindex;
	__u32 mark;
	__u32 len;
	__u32 cpu;
	__u8 kind;      /* enum pd_kind */
	__u8 nsteps;    /* valid entries in path, oldest first */
	__u8 steps_lost;/* older steps overwritten because path was full */
	__u8 ctinfo;
	/* Facts that tell a benign free from a drop (drops only): the TCP
	 * state + 1 of the socket that held the packet (0 = none known), and
	 * enum pd_skb_fact bits. Read here, at the free: a socket may be gone
	 * by the time userspace could ask. */
	__u8 sk_state;
	__u8 facts;
	__u16 _pad;
	char ifname[PD_IFNAMSIZ];
	/* Table and base chain whose hook function returned NF_DROP, where
	 * nft_do_chain / ipt_do_table can be probed (fexit). */
	char nf_table[PD_NFNAMSIZ];
	char nf_chain[PD_NFNAMSIZ];
	struct pd_tuple t;
	/* --snaplen: caplen bytes of the packet follow the sent path steps,
	 * from its MAC header when cap_mac is 1 (an Ethernet header), else
	 * from its network header; cap_len is the packet's length from there. */
	__u32 cap_len;
	__u16 caplen;
	__u8 cap_mac;
	__u8 _cap_pad;
	struct pd_step path[PD_PATH_MAX]; /* only nsteps entries are sent */
};

/* The most packet bytes one event carries (--snaplen). */
enum pd_snap {
	PD_SNAP_MAX = 16384,
};

/* What events are built in: an event and room for its packet bytes. */
struct pd_event_buf {
	struct pd_event ev;
	__u8 pkt[PD_SNAP_MAX];
};
