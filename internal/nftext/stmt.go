package nftext

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Statements: verdicts, reject, NAT, log and limit, printed as nft does.
func verdict(v *expr.Verdict) string {
	switch v.Kind {
	case expr.VerdictAccept:
		return "accept"
	case expr.VerdictDrop:
		return "drop"
	case expr.VerdictReturn:
		return "return"
	case expr.VerdictContinue:
		return "continue"
	case expr.VerdictQueue:
		return "queue"
	case expr.VerdictJump:
		return "jump " + v.Chain
	case expr.VerdictGoto:
		return "goto " + v.Chain
	}
	return fmt.Sprintf("<verdict %d>", v.Kind)
}

var icmpCodes = map[uint8]string{0: "net-unreachable", 1: "host-unreachable", 2: "prot-unreachable", 3: "port-unreachable",
	9: "net-prohibited", 10: "host-prohibited", 13: "admin-prohibited"}
var icmpv6Codes = map[uint8]string{0: "no-route", 1: "admin-prohibited", 3: "addr-unreachable", 4: "port-unreachable", 5: "policy-fail", 6: "reject-route"}
var icmpxCodes = map[uint8]string{0: "no-route", 1: "port-unreachable", 2: "host-unreachable", 3: "admin-prohibited"}

// reject prints as nft does: the default code is implied, except where the
// table's family left the ICMP family to a dependency (verbose).
func (r *nftRender) reject(e *expr.Reject) string {
	verbose := r.fam != "ip" && r.fam != "ip6"
	if verbose && r.depNF >= 0 && e.Type == unix.NFT_REJECT_ICMP_UNREACH {
		r.out[r.depNF], r.depNF = "", -1
	}
	switch e.Type {
	case unix.NFT_REJECT_TCP_RST:
		return "reject with tcp reset"
	case unix.NFT_REJECT_ICMPX_UNREACH:
		if e.Code == unix.NFT_REJECT_ICMPX_PORT_UNREACH {
			return "reject"
		}
		return "reject with icmpx " + codeName(icmpxCodes, e.Code)
	case unix.NFT_REJECT_ICMP_UNREACH:
		switch r.nh {
		case "ip":
			if e.Code == 3 && !verbose {
				return "reject"
			}
			return "reject with icmp " + codeName(icmpCodes, e.Code)
		case "ip6":
			if e.Code == 4 && !verbose {
				return "reject"
			}
			return "reject with icmpv6 " + codeName(icmpv6Codes, e.Code)
		}
	}
	return fmt.Sprintf("<reject type %d code %d>", e.Type, e.Code)
}

func codeName(m map[uint8]string, c uint8) string {
	if n, ok := m[c]; ok {
		return n
	}
	return strconv.Itoa(int(c))
}

func natFlags(random, fully, persistent bool) string {
	var f []string
	if random {
		f = append(f, "random")
	}
	if fully {
		f = append(f, "fully-random")
	}
	if persistent {
		f = append(f, "persistent")
	}
	if len(f) == 0 {
		return ""
	}
	return " " + strings.Join(f, ",")
}

func (r *nftRender) ports(min, max uint32) string {
	lo := r.konst(min, kBE)
	if max != 0 && max != min {
		if hi := r.konst(max, kBE); hi != lo {
			return lo + "-" + hi
		}
	}
	return lo
}

func (r *nftRender) nat(e *expr.NAT) string {
	if e.Prefix {
		return "<nat prefix>"
	}
	s := "snat"
	if e.Type == expr.NATTypeDestNAT {
		s = "dnat"
	}
	full, fam := 4, "ip"
	if e.Family == unix.NFPROTO_IPV6 {
		full, fam = 16, "ip6"
	}
	if r.fam != "ip" && r.fam != "ip6" {
		s += " " + fam
	}
	s += " to "
	addr := ""
	if e.RegAddrMin != 0 {
		a := r.regs[e.RegAddrMin]
		if a == nil || a.konst == nil {
			return "<nat>"
		}
		addr = r.addr(a.konst, full)
		if e.RegAddrMax != 0 && e.RegAddrMax != e.RegAddrMin {
			if b := r.regs[e.RegAddrMax]; b != nil && b.konst != nil && string(b.konst) != string(a.konst) {
				addr += "-" + r.addr(b.konst, full)
			}
		}
		if full == 16 && e.RegProtoMin != 0 {
			addr = "[" + addr + "]"
		}
	}
	s += addr
	if e.RegProtoMin != 0 {
		s += ":" + r.ports(e.RegProtoMin, e.RegProtoMax)
	}
	return s + natFlags(e.Random, e.FullyRandom, e.Persistent)
}

var logLevels = []string{"emerg", "alert", "crit", "err", "warn", "notice", "info", "debug", "audit"}

func logText(e *expr.Log) string {
	s := "log"
	if e.Key&(1<<unix.NFTA_LOG_PREFIX) != 0 {
		s += " prefix " + strconv.Quote(strings.TrimRight(string(e.Data), "\x00"))
	}
	if e.Key&(1<<unix.NFTA_LOG_GROUP) != 0 {
		s += " group " + strconv.Itoa(int(e.Group))
	}
	if e.Key&(1<<unix.NFTA_LOG_LEVEL) != 0 && e.Level != expr.LogLevelWarning && int(e.Level) < len(logLevels) {
		s += " level " + logLevels[e.Level]
	}
	if e.Key&((1<<unix.NFTA_LOG_SNAPLEN)|(1<<unix.NFTA_LOG_QTHRESHOLD)|(1<<unix.NFTA_LOG_FLAGS)) != 0 && e.Flags != 0 {
		s += " <log flags>"
	}
	return s
}

func limitText(e *expr.Limit) string {
	if e.Type != expr.LimitTypePkts {
		return "<limit bytes>"
	}
	units := map[expr.LimitTime]string{expr.LimitTimeSecond: "second", expr.LimitTimeMinute: "minute",
		expr.LimitTimeHour: "hour", expr.LimitTimeDay: "day", expr.LimitTimeWeek: "week"}
	s := "limit rate "
	if e.Over {
		s += "over "
	}
	s += strconv.FormatUint(e.Rate, 10) + "/" + units[e.Unit]
	if e.Burst != 5 && e.Burst != 0 {
		s += " burst " + strconv.Itoa(int(e.Burst)) + " packets"
	}
	return s
}
