package nfstate

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/xt"
	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/pktdrop/pktdrop/internal/xtables"
)

// Read reads the state of the network namespace the calling thread is in
// (lock the thread first, e.g. inside netns.Resolver.Do). It only lists:
// nothing is changed.
func Read() (*State, error) {
	s := &State{Links: map[string]Link{}, BrNetfilter: map[string]bool{}}
	f, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		return nil, fmt.Errorf("open own netns: %w", err)
	}
	defer f.Close()
	if err := readNFT(s, int(f.Fd())); err != nil {
		s.note(err.Error())
	}
	readRuleText(s, int(f.Fd()))
	for _, fam := range []int{4, 6} {
		if err := readLegacy(s, fam); err != nil {
			s.note(err.Error())
		}
	}
	readLinks(s, int(f.Fd()))
	for fam, key := range map[string]string{"ipv4": "bridge-nf-call-iptables", "ipv6": "bridge-nf-call-ip6tables"} {
		b, err := os.ReadFile("/proc/sys/net/bridge/" + key)
		s.BrNetfilter[fam] = err == nil && strings.TrimSpace(string(b)) == "1"
	}
	return s, nil
}

func (s *State) note(msg string) {
	if s.Note != "" {
		s.Note += "; "
	}
	s.Note += msg
}

var familyNames = map[nftables.TableFamily]string{
	nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6", nftables.TableFamilyINet: "inet",
	nftables.TableFamilyBridge: "bridge", nftables.TableFamilyNetdev: "netdev", nftables.TableFamilyARP: "arp",
}

var hookNames = map[string][]string{
	"ip":     {"prerouting", "input", "forward", "output", "postrouting", "ingress"},
	"ip6":    {"prerouting", "input", "forward", "output", "postrouting", "ingress"},
	"inet":   {"prerouting", "input", "forward", "output", "postrouting", "ingress"},
	"bridge": {"prerouting", "input", "forward", "output", "postrouting"},
	"arp":    {"input", "output", "forward"},
	"netdev": {"ingress", "egress"},
}

func readNFT(s *State, fd int) error {
	conn, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		return fmt.Errorf("nftables: %w", err)
	}
	defer conn.CloseLasting()
	chains, err := conn.ListChains()
	if err != nil {
		return fmt.Errorf("list nftables chains: %w", err)
	}
	for _, ch := range chains {
		fam := familyNames[ch.Table.Family]
		c := &Chain{Family: fam, Table: ch.Table.Name, Name: ch.Name, Backend: "nft", Device: ch.Device}
		if ch.Hooknum != nil {
			c.Base = true
			if names := hookNames[fam]; int(*ch.Hooknum) < len(names) {
				c.Hook = names[*ch.Hooknum]
			}
			if ch.Priority != nil {
				c.Prio = int32(*ch.Priority)
			}
			c.Policy = "accept"
			if ch.Policy != nil && *ch.Policy == nftables.ChainPolicyDrop {
				c.Policy = "drop"
			}
		}
		rules, err := conn.GetRules(ch.Table, ch)
		if err != nil {
			return fmt.Errorf("list rules of %s: %w", c.Ref(), err)
		}
		for _, r := range rules {
			c.Rules = append(c.Rules, decode(r))
		}
		s.Chains = append(s.Chains, c)
	}
	return nil
}

// decode reads what a rule decides from its expressions.
func decode(r *nftables.Rule) Rule {
	out := Rule{Handle: r.Handle}
	var ctState bool
	for _, e := range r.Exprs {
		switch e := e.(type) {
		case *expr.Verdict:
			switch e.Kind {
			case expr.VerdictDrop:
				out.Verdict = "drop"
			case expr.VerdictAccept:
				out.Verdict = "accept"
			case expr.VerdictReturn:
				out.Verdict = "return"
			case expr.VerdictQueue:
				out.Verdict = "queue"
			case expr.VerdictJump:
				out.Verdict, out.Target = "jump", e.Chain
			case expr.VerdictGoto:
				out.Verdict, out.Target = "goto", e.Chain
			}
		case *expr.Reject:
			out.Verdict, out.Reject = "reject", rejectName(e)
		case *expr.Target:
			switch e.Name {
			case "REJECT":
				out.Verdict, out.Reject = "reject", "icmp error or tcp reset"
			case "DROP":
				out.Verdict = "drop"
			}
		case *expr.Ct:
			ctState = e.Key == expr.CtKeySTATE
		case *expr.Bitwise:
			if ctState && len(e.Mask) >= 4 && binary.NativeEndian.Uint32(e.Mask)&expr.CtStateBitINVALID != 0 {
				out.Invalid = true
			}
			ctState = false
		case *expr.Match:
			out.Invalid = out.Invalid || matchesInvalid(e)
		case *expr.Lookup:
			if e.IsDestRegSet && e.DestRegister == 0 && out.Verdict == "" {
				out.Verdict = "vmap" // a verdict map: its elements may drop
			}
		}
	}
	return out
}

func rejectName(e *expr.Reject) string {
	switch e.Type {
	case unix.NFT_REJECT_TCP_RST:
		return "tcp reset"
	case unix.NFT_REJECT_ICMP_UNREACH, unix.NFT_REJECT_ICMPX_UNREACH:
		return "icmp unreachable"
	}
	return "icmp error or tcp reset"
}

// matchesInvalid reads iptables-nft's conntrack and state matches.
func matchesInvalid(m *expr.Match) bool {
	const invalid = 1 // XT_CONNTRACK_STATE_INVALID, XT_STATE_INVALID: 1 << 0
	switch info := m.Info.(type) {
	case *xt.ConntrackMtinfo1:
		return info.MatchFlags&uint16(xt.ConntrackState) != 0 && info.StateMask&invalid != 0 && info.InvertFlags&uint16(xt.ConntrackState) == 0
	case *xt.ConntrackMtinfo2:
		return info.MatchFlags&uint16(xt.ConntrackState) != 0 && info.StateMask&invalid != 0 && info.InvertFlags&uint16(xt.ConntrackState) == 0
	case *xt.ConntrackMtinfo3:
		return info.MatchFlags&uint16(xt.ConntrackState) != 0 && info.StateMask&invalid != 0 && info.InvertFlags&uint16(xt.ConntrackState) == 0
	case *xt.Unknown:
		if m.Name == "state" && len(*info) >= 4 {
			return binary.NativeEndian.Uint32((*info)[:4])&invalid != 0
		}
	}
	return false
}

// readLegacy adds the iptables-legacy tables of family (4 or 6).
func readLegacy(s *State, family int) error {
	if !xtables.InUse(family) {
		return nil
	}
	rs, err := xtables.ReadHere(family)
	if err != nil || rs == nil {
		return err
	}
	fam := "ip"
	if family == 6 {
		fam = "ip6"
	}
	for _, t := range rs.Tables {
		for _, xc := range t.Chains {
			c := &Chain{Family: fam, Table: t.Name, Name: xc.Name, Backend: "iptables-legacy"}
			if xc.Policy != "-" {
				c.Base, c.Hook, c.Prio, c.Policy = true, strings.ToLower(xc.Name), legacyPrio(t.Name, xc.Name), strings.ToLower(xc.Policy)
			}
			for _, xr := range xc.Rules {
				r := Rule{Handle: uint64(xr.Index), Text: xr.Text}
				switch xr.Target {
				case "DROP":
					r.Verdict = "drop"
				case "REJECT":
					r.Verdict, r.Reject = "reject", rejectFromText(xr.Text)
				case "ACCEPT":
					r.Verdict = "accept"
				case "RETURN":
					r.Verdict = "return"
				case "":
				default:
					if _, ok := t.Chains[xr.Target]; ok {
						r.Verdict, r.Target = "jump", xr.Target
						if xr.Goto {
							r.Verdict = "goto"
						}
					}
				}
				r.Invalid = textInvalid(xr.Text)
				c.Rules = append(c.Rules, r)
			}
			s.Chains = append(s.Chains, c)
		}
	}
	return nil
}

// legacyPrio is where x_tables registers each table (NF_IP_PRI_*); the
// nat table's hooks differ: destination NAT before filter, source after.
func legacyPrio(table, chain string) int32 {
	switch table {
	case "raw":
		return -300
	case "mangle":
		return -150
	case "nat":
		if chain == "PREROUTING" || chain == "OUTPUT" {
			return -100
		}
		return 100
	case "security":
		return 50
	}
	return 0
}

func textInvalid(text string) bool {
	return strings.Contains(text, "--ctstate INVALID") || strings.Contains(text, "--state INVALID") ||
		strings.Contains(text, "ct state invalid")
}

func rejectFromText(text string) string {
	_, with, ok := strings.Cut(text, "--reject-with ")
	if !ok {
		return "icmp port-unreachable"
	}
	with, _, _ = strings.Cut(with, " ")
	if with == "tcp-reset" {
		return "tcp reset"
	}
	return "icmp " + strings.TrimPrefix(strings.TrimPrefix(with, "icmp-"), "icmp6-")
}

func readLinks(s *State, fd int) {
	h, err := vnl.NewHandleAt(nsHandle(fd))
	if err != nil {
		return
	}
	defer h.Close()
	links, err := h.LinkList()
	if err != nil {
		return
	}
	byIndex := map[int]vnl.Link{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l
	}
	for _, l := range links {
		a := l.Attrs()
		ln := Link{Name: a.Name, Kind: l.Type()}
		if m, ok := byIndex[a.MasterIndex]; ok && a.MasterIndex != 0 {
			ln.Master, ln.MasterKind = m.Attrs().Name, m.Type()
		}
		s.Links[a.Name] = ln
	}
}
