/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A pcap-filter expression (`pktdrop watch tcp and port 80`), compiled by
 * internal/filterexpr into a short jump program: each instruction tests
 * one field of the parsed tuple and jumps forward to jt or jf, like
 * classic BPF without loads. It lives in .rodata: once userspace has
 * written it, the verifier reads each instruction as a constant, follows
 * only the branches the program can take and drops the rest, so loading
 * costs about what the expression's own tests cost. Off (cfg_expr_on = 0),
 * all of it is dead code. internal/filterexpr/eval.go mirrors this file
 * for the differential test against libpcap. */
#pragma once

#define PD_EXPR_MAX 64
/* Jump targets past the program end the evaluation. */
#define PD_EXPR_TRUE 254
#define PD_EXPR_FALSE 255

enum pd_expr_op {
	PD_EXPR_SRC = 1,       /* family == fam and saddr in addr/plen */
	PD_EXPR_DST = 2,       /* the same on daddr */
	PD_EXPR_FAMILY = 3,    /* the rest: lo <= (field & mask) <= hi */
	PD_EXPR_PROTO = 4,
	PD_EXPR_SPORT = 5,
	PD_EXPR_DPORT = 6,
	PD_EXPR_TCPFLAGS = 7,
	PD_EXPR_ICMPTYPE = 8,
	PD_EXPR_ICMPCODE = 9,
};

struct pd_expr_insn {
	__u8 op;   /* enum pd_expr_op */
	__u8 jt;   /* next instruction when the test holds */
	__u8 jf;   /* ... and when it does not */
	__u8 plen; /* SRC/DST: prefix length */
	__u16 mask;
	__u16 lo;
	__u16 hi;
	__u8 fam;  /* SRC/DST: 4 or 6 */
	__u8 _pad;
	__u8 addr[16];
};

/* For bpf2go -type: Go takes the opcodes from here. */
const enum pd_expr_op *unused_expr_op __attribute__((unused));

const volatile __u8 cfg_expr_on = 0;
const volatile struct pd_expr_insn cfg_expr[PD_EXPR_MAX] = {};

static __always_inline bool expr_prefix(const volatile __u8 *net, __u8 plen, const __u8 *addr)
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

static __always_inline bool expr_test(const volatile struct pd_expr_insn *in, const struct pd_tuple *t)
{
	__u8 op = in->op;
	__u16 v;

	switch (op) {
	case PD_EXPR_SRC:
		return t->family == in->fam && expr_prefix(in->addr, in->plen, t->saddr);
	case PD_EXPR_DST:
		return t->family == in->fam && expr_prefix(in->addr, in->plen, t->daddr);
	case PD_EXPR_FAMILY: v = t->family; break;
	case PD_EXPR_PROTO: v = t->proto; break;
	case PD_EXPR_SPORT: v = t->sport; break;
	case PD_EXPR_DPORT: v = t->dport; break;
	case PD_EXPR_TCPFLAGS: v = t->tcp_flags; break;
	case PD_EXPR_ICMPTYPE: v = t->icmp_type; break;
	case PD_EXPR_ICMPCODE: v = t->icmp_code; break;
	default: return false;
	}
	v &= in->mask;
	return v >= in->lo && v <= in->hi;
}

/* Jumps only go forward, so the loop ends. The verifier knows it too:
 * it reads every instruction as a constant, so pc is a known value
 * that grows on each path. No loop counter: with one, states at the
 * same instruction but a different step count could not be merged,
 * and an expression of 20 tests took 20 times longer to load. */
static __noinline bool expr_match(const struct pd_tuple *t)
{
	__u32 pc = 0;

	while (pc < PD_EXPR_MAX) {
		const volatile struct pd_expr_insn *in = &cfg_expr[pc];
		pc = expr_test(in, t) ? in->jt : in->jf;
	}
	return pc == PD_EXPR_TRUE;
}
