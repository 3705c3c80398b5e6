// Package gen holds the bpf2go output for bpf/pktdrop.c, committed so that
// building pktdrop needs no clang. Regenerate with `make generate`.
package gen

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -go-package gen -target amd64 -type pd_event -type pd_step -type pd_tuple -type pd_point -type pd_kind -type pd_counter -type pd_snap -type pd_expr_op -type pd_skb_fact Pktdrop ../bpf/pktdrop.c -- -I../bpf/include -I../bpf -O2 -g -Wall -Werror
