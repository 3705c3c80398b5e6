// Package nftrace names the nf_tables rule or chain policy that decided a
// packet's fate, using the kernel's own nftrace events.
//
// "Dropped in FORWARD" is where users start searching; "dropped by the policy
// of chain FORWARD in table filter" is where they stop. To get there, Start
// installs, in every selected network namespace, a small table of family inet
// named pktdrop_<pid> whose chains hook prerouting and output at the lowest
// priority the kernel allows and set `meta nftrace set 1` on packets that
// match pktdrop's filter. Every later nf_tables chain (iptables-nft tables
// included) then reports each verdict over the NFNLGRP_NFTRACE netlink group.
// The events are grouped per packet (trace id) into a Decision.
//
// Safety: the table is created with NFT_TABLE_F_OWNER on a netlink socket the
// Tracer keeps open, so the kernel removes it when the process exits, even on
// SIGKILL. Kernels older than 5.12 refuse the flag; Start then fails with an
// error wrapping ErrOwnerUnsupported instead of installing a table it could
// not guarantee to clean up. pktdrop never touches any other table.
//
// Grouping: a trace id is per skb and carries no end marker. A packet's group
// is flushed (a) at once on a drop/reject/queue/stolen verdict, (b) at once
// when the last base chain (highest priority) of a final hook (input or
// postrouting) accepts it, (c) when an event for the same id arrives at an
// earlier hook than the group has reached (the skb was recycled for a new
// packet), or (d) after Options.Idle (200 ms by default) without events. One
// Decision therefore covers every hook the packet crossed in that netns; its
// Hook is the hook of the deciding step.
package nftrace
