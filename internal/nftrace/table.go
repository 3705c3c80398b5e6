package nftrace

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Not in x/sys/unix yet (linux/netfilter/nf_tables.h, kernel 5.12).
const (
	nftTableFOwner = 0x2
	nftaTableOwner = 0x7
)

// ErrOwnerUnsupported is wrapped by Start's error when the kernel will not
// create or keep an owner-flagged table: NFT_TABLE_F_OWNER arrived in Linux
// 5.12, and without it a killed pktdrop would leave its trace table behind.
// Callers (and tests) use errors.Is to tell "this kernel cannot attribute
// rules" from a real failure.
var ErrOwnerUnsupported = errors.New("rule attribution needs kernel >= 5.12")

// traceTable is pktdrop's own table in one netns. conn owns it: the kernel
// deletes the table when conn is closed, by us or by process death.
type traceTable struct {
	name string
	conn *netlink.Conn
}

func nlmsg(msgType uint16, family uint8, flags netlink.HeaderFlags, attrs []netlink.Attribute) (netlink.Message, error) {
	data, err := netlink.MarshalAttributes(attrs)
	if err != nil {
		return netlink.Message{}, err
	}
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | msgType),
			Flags: netlink.Request | netlink.Acknowledge | flags},
		Data: append([]byte{family, unix.NFNETLINK_V0, 0, 0}, data...),
	}, nil
}

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func cstr(s string) []byte { return append([]byte(s), 0) }

// installTable creates the owner-flagged table, its two chains and rules in
// one transaction on a fresh socket in the netns.
func installTable(ns *nsHandle, name string, m Match) (*traceTable, error) {
	alts, err := ruleExprs(m)
	if err != nil {
		return nil, err
	}
	conn, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: ns.fd})
	if err != nil {
		return nil, fmt.Errorf("dial nfnetlink: %w", err)
	}
	tt := &traceTable{name: name, conn: conn}
	fam := uint8(unix.NFPROTO_INET)
	var msgs []netlink.Message
	add := func(t uint16, flags netlink.HeaderFlags, attrs []netlink.Attribute) error {
		msg, err := nlmsg(t, fam, flags, attrs)
		msgs = append(msgs, msg)
		return err
	}
	if err := add(unix.NFT_MSG_NEWTABLE, netlink.Create|netlink.Excl, []netlink.Attribute{
		{Type: unix.NFTA_TABLE_NAME, Data: cstr(name)},
		{Type: unix.NFTA_TABLE_FLAGS, Data: be32(nftTableFOwner)},
	}); err != nil {
		return nil, closeWith(conn, err)
	}
	// The earliest priority: before defrag (-400), raw (-300) and conntrack
	// (-200), so every other chain sees the trace flag.
	prio := int32(math.MinInt32)
	for _, c := range []struct {
		name string
		hook uint32
	}{{"prerouting", unix.NF_INET_PRE_ROUTING}, {"output", unix.NF_INET_LOCAL_OUT}} {
		hook, _ := netlink.MarshalAttributes([]netlink.Attribute{
			{Type: unix.NFTA_HOOK_HOOKNUM, Data: be32(c.hook)},
			{Type: unix.NFTA_HOOK_PRIORITY, Data: be32(uint32(prio))},
		})
		if err := add(unix.NFT_MSG_NEWCHAIN, netlink.Create, []netlink.Attribute{
			{Type: unix.NFTA_CHAIN_TABLE, Data: cstr(name)},
			{Type: unix.NFTA_CHAIN_NAME, Data: cstr(c.name)},
			{Type: unix.NLA_F_NESTED | unix.NFTA_CHAIN_HOOK, Data: hook},
			{Type: unix.NFTA_CHAIN_TYPE, Data: cstr("filter")},
			{Type: unix.NFTA_CHAIN_POLICY, Data: be32(nfAccept)},
		}); err != nil {
			return nil, closeWith(conn, err)
		}
		for _, exprs := range alts {
			var elems []netlink.Attribute
			for _, e := range exprs {
				b, err := expr.Marshal(byte(fam), e)
				if err != nil {
					return nil, closeWith(conn, fmt.Errorf("marshal rule: %w", err))
				}
				elems = append(elems, netlink.Attribute{Type: unix.NLA_F_NESTED | unix.NFTA_LIST_ELEM, Data: b})
			}
			list, err := netlink.MarshalAttributes(elems)
			if err != nil {
				return nil, closeWith(conn, err)
			}
			if err := add(unix.NFT_MSG_NEWRULE, netlink.Create|unix.NLM_F_APPEND, []netlink.Attribute{
				{Type: unix.NFTA_RULE_TABLE, Data: cstr(name)},
				{Type: unix.NFTA_RULE_CHAIN, Data: cstr(c.name)},
				{Type: unix.NLA_F_NESTED | unix.NFTA_RULE_EXPRESSIONS, Data: list},
			}); err != nil {
				return nil, closeWith(conn, err)
			}
		}
	}
	if err := tt.commit(msgs); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			err = fmt.Errorf("kernel refused the table owner flag; %w: %w", ErrOwnerUnsupported, err)
		}
		return nil, closeWith(conn, err)
	}
	if err := tt.verifyOwner(); err != nil {
		// Do not keep a table the kernel would not remove for us.
		_ = tt.close()
		return nil, err
	}
	return tt, nil
}

func closeWith(c *netlink.Conn, err error) error {
	c.Close()
	return err
}

// commit sends msgs as one nfnetlink batch and waits for every ack.
func (tt *traceTable) commit(msgs []netlink.Message) error {
	begin := netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_MSG_BATCH_BEGIN), Flags: netlink.Request},
		Data: []byte{0, unix.NFNETLINK_V0, 0, unix.NFNL_SUBSYS_NFTABLES}}
	end := begin
	end.Header.Type = netlink.HeaderType(unix.NFNL_MSG_BATCH_END)
	batch := append(append([]netlink.Message{begin}, msgs...), end)
	if _, err := tt.conn.SendMessages(batch); err != nil {
		return fmt.Errorf("send nftables batch: %w", err)
	}
	for acked := 0; acked < len(msgs); {
		replies, err := tt.conn.Receive()
		if err != nil {
			return fmt.Errorf("nftables batch: %w", err)
		}
		for _, r := range replies {
			if r.Header.Type == netlink.Error {
				acked++
			}
		}
	}
	return nil
}

// verifyOwner checks that the kernel recorded the owner flag: only then is
// cleanup on process death guaranteed.
func (tt *traceTable) verifyOwner() error {
	msg, err := nlmsg(unix.NFT_MSG_GETTABLE, unix.NFPROTO_INET, 0, []netlink.Attribute{
		{Type: unix.NFTA_TABLE_NAME, Data: cstr(tt.name)},
	})
	if err != nil {
		return err
	}
	replies, err := tt.conn.Execute(msg)
	if err != nil {
		return fmt.Errorf("read back table %s: %w", tt.name, err)
	}
	for _, r := range replies {
		if len(r.Data) < 4 {
			continue
		}
		ad, err := netlink.NewAttributeDecoder(r.Data[4:])
		if err != nil {
			return err
		}
		ad.ByteOrder = binary.BigEndian
		var flags uint32
		owner := false
		for ad.Next() {
			switch ad.Type() {
			case unix.NFTA_TABLE_FLAGS:
				flags = ad.Uint32()
			case nftaTableOwner:
				owner = ad.Uint32() == tt.conn.PID()
			}
		}
		if flags&nftTableFOwner != 0 && owner {
			return nil
		}
	}
	return fmt.Errorf("table %s lacks the owner flag; %w", tt.name, ErrOwnerUnsupported)
}

// close deletes the table explicitly, then closes the owning socket (which
// alone would also make the kernel delete it).
func (tt *traceTable) close() error {
	msg, err := nlmsg(unix.NFT_MSG_DELTABLE, unix.NFPROTO_INET, 0, []netlink.Attribute{
		{Type: unix.NFTA_TABLE_NAME, Data: cstr(tt.name)},
	})
	if err == nil {
		err = tt.commit([]netlink.Message{msg})
	}
	if cerr := tt.conn.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("delete table %s: %w", tt.name, err)
	}
	return nil
}
