package nftrace

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// Event is one decoded NFT_MSG_TRACE message. It is what the recorder writes
// to testdata, so Replay can be tested without privileges.
type Event struct {
	Netns        string    `json:"netns"`
	Time         time.Time `json:"time"`
	ID           uint32    `json:"id"`
	Type         string    `json:"type"`   // rule, return, policy
	Family       string    `json:"family"` // table family
	Table        string    `json:"table"`
	Chain        string    `json:"chain"`
	Handle       uint64    `json:"handle,omitempty"`
	Verdict      string    `json:"verdict,omitempty"`
	VerdictChain string    `json:"verdict_chain,omitempty"`
	NFProto      string    `json:"nfproto,omitempty"` // ip or ip6
	IIF          uint32    `json:"iif,omitempty"`
	OIF          uint32    `json:"oif,omitempty"`
	Mark         uint32    `json:"mark,omitempty"`
	Network      []byte    `json:"network,omitempty"`
	Transport    []byte    `json:"transport,omitempty"`
}

var familyNames = map[uint8]string{
	unix.NFPROTO_INET:   "inet",
	unix.NFPROTO_IPV4:   "ip",
	unix.NFPROTO_ARP:    "arp",
	unix.NFPROTO_NETDEV: "netdev",
	unix.NFPROTO_BRIDGE: "bridge",
	unix.NFPROTO_IPV6:   "ip6",
}

func familyName(f uint8) string {
	if s, ok := familyNames[f]; ok {
		return s
	}
	return fmt.Sprintf("family%d", f)
}

var traceTypes = map[uint32]string{
	unix.NFT_TRACETYPE_POLICY: "policy",
	unix.NFT_TRACETYPE_RETURN: "return",
	unix.NFT_TRACETYPE_RULE:   "rule",
}

// verdictName renders an nf_tables verdict code. Positive netfilter verdicts
// carry extra bits (queue number, errno) above NF_VERDICT_MASK.
func verdictName(code int32) string {
	switch code {
	case unix.NFT_CONTINUE:
		return "continue"
	case unix.NFT_BREAK:
		return "break"
	case unix.NFT_JUMP:
		return "jump"
	case unix.NFT_GOTO:
		return "goto"
	case unix.NFT_RETURN:
		return "return"
	}
	switch uint32(code) & 0xff {
	case nfDrop:
		return "drop"
	case nfAccept:
		return "accept"
	case nfStolen:
		return "stolen"
	case nfQueue:
		return "queue"
	case nfRepeat:
		return "repeat"
	case nfStop:
		return "stop"
	}
	return fmt.Sprintf("verdict%d", code)
}

// Netfilter verdicts (linux/netfilter.h); not in x/sys/unix.
const (
	nfDrop   = 0
	nfAccept = 1
	nfStolen = 2
	nfQueue  = 3
	nfRepeat = 4
	nfStop   = 5
)

const nftMsgTrace = unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_TRACE

// decodeTrace decodes one netlink message; ok is false for messages that
// are not trace events.
func decodeTrace(m netlink.Message) (ev Event, ok bool, err error) {
	if m.Header.Type != nftMsgTrace {
		return ev, false, nil
	}
	if len(m.Data) < 4 {
		return ev, false, fmt.Errorf("short nfgenmsg")
	}
	ev.Family = familyName(m.Data[0])
	ad, err := netlink.NewAttributeDecoder(m.Data[4:])
	if err != nil {
		return ev, false, fmt.Errorf("decode trace attributes: %w", err)
	}
	ad.ByteOrder = binary.BigEndian
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_TRACE_TABLE:
			ev.Table = ad.String()
		case unix.NFTA_TRACE_CHAIN:
			ev.Chain = ad.String()
		case unix.NFTA_TRACE_RULE_HANDLE:
			ev.Handle = ad.Uint64()
		case unix.NFTA_TRACE_TYPE:
			ev.Type = traceTypes[ad.Uint32()]
		case unix.NFTA_TRACE_ID:
			ev.ID = ad.Uint32()
		case unix.NFTA_TRACE_VERDICT:
			ad.Nested(func(nd *netlink.AttributeDecoder) error {
				for nd.Next() {
					switch nd.Type() {
					case unix.NFTA_VERDICT_CODE:
						ev.Verdict = verdictName(int32(nd.Uint32()))
					case unix.NFTA_VERDICT_CHAIN:
						ev.VerdictChain = nd.String()
					}
				}
				return nil
			})
		case unix.NFTA_TRACE_POLICY:
			// A policy event carries the base chain's policy as verdict.
			ev.Verdict = verdictName(int32(ad.Uint32()))
		case unix.NFTA_TRACE_NFPROTO:
			ev.NFProto = familyName(uint8(ad.Uint32()))
		case unix.NFTA_TRACE_IIF:
			ev.IIF = ad.Uint32()
		case unix.NFTA_TRACE_OIF:
			ev.OIF = ad.Uint32()
		case unix.NFTA_TRACE_MARK:
			ev.Mark = ad.Uint32()
		case unix.NFTA_TRACE_NETWORK_HEADER:
			ev.Network = append([]byte(nil), ad.Bytes()...)
		case unix.NFTA_TRACE_TRANSPORT_HEADER:
			ev.Transport = append([]byte(nil), ad.Bytes()...)
		}
	}
	if err := ad.Err(); err != nil {
		return ev, false, fmt.Errorf("decode trace attributes: %w", err)
	}
	return ev, true, nil
}
