package nftrace

import (
	"net/netip"
	"testing"
	"time"
)

func TestParseTuple(t *testing.T) {
	ip := []byte{0x45, 0, 0, 84, 0, 1, 0x40, 0, 64, 1, 0, 0, 10, 231, 1, 2, 10, 231, 2, 2}
	icmp := []byte{8, 0, 0, 0, 0x12, 0x34, 0, 7}
	tu, ok := parseTuple(ip, icmp)
	want := Tuple{Family: "ip", Proto: 1, Src: netip.MustParseAddr("10.231.1.2"), Dst: netip.MustParseAddr("10.231.2.2"),
		ICMPType: 8, ICMPID: 0x1234, ICMPSeq: 7}
	if !ok || tu != want {
		t.Errorf("icmp: got %+v %v", tu, ok)
	}
	ip[9] = 17
	tu, _ = parseTuple(ip, []byte{0x9c, 0x40, 0, 53})
	if tu.Sport != 40000 || tu.Dport != 53 {
		t.Errorf("udp: got %+v", tu)
	}
	ip[6] = 0x00
	ip[7] = 0x10 // non-first fragment: no ports
	if tu, _ = parseTuple(ip, []byte{1, 2, 3, 4}); tu.Sport != 0 {
		t.Errorf("fragment: got %+v", tu)
	}
	if _, ok := parseTuple([]byte{0x45}, nil); ok {
		t.Error("short header accepted")
	}
}

const nftList = `table ip filter { # handle 1
	chain DOCKER-USER { # handle 1
		iifname "flannel.1" counter packets 0 bytes 0 drop comment "block overlay" # handle 2
		counter packets 0 bytes 0 return # handle 3
	}
	chain FORWARD { # handle 4
		type filter hook forward priority filter; policy accept;
		counter packets 0 bytes 0 jump DOCKER-USER # handle 5
	}
}
table inet fw { # handle 2
	set allowed { # handle 3
		type ipv4_addr
		elements = { 10.0.0.1 }
	}
	chain input { # handle 1
		type filter hook input priority filter; policy accept;
		icmp type echo-request counter packets 0 bytes 0 drop comment "no ping" # handle 2
	}
}
`

const iptSave = `*filter
:INPUT ACCEPT [0:0]
:DOCKER-USER - [0:0]
-A FORWARD -j DOCKER-USER
-A DOCKER-USER -i flannel.1 -m comment --comment "block overlay" -j DROP
-A DOCKER-USER -j RETURN
COMMIT
`

func TestParseRuleText(t *testing.T) {
	rules := parseNftList(nftList)
	if len(rules) != 4 {
		t.Fatalf("got %d rules: %+v", len(rules), rules)
	}
	attachIptables(rules, "ip", "filter", parseIptablesSave(iptSave))
	rs := &Ruleset{Rules: rules}
	r := rs.rule("ip", "filter", 2)
	if r == nil || r.Chain != "DOCKER-USER" || r.Text != `iifname "flannel.1" counter packets 0 bytes 0 drop comment "block overlay"` ||
		r.Iptables != `-A DOCKER-USER -i flannel.1 -m comment --comment "block overlay" -j DROP` {
		t.Errorf("rule 2: %+v", r)
	}
	if r := rs.rule("ip", "filter", 5); r == nil || r.Iptables != "-A FORWARD -j DOCKER-USER" {
		t.Errorf("rule 5: %+v", r)
	}
	if r := rs.rule("inet", "fw", 2); r == nil || r.Chain != "input" || r.Iptables != "" {
		t.Errorf("inet rule: %+v", r)
	}
	// A chain whose rule count differs is not mapped at all.
	rules = parseNftList(nftList)
	attachIptables(rules, "ip", "filter", parseIptablesSave("-A DOCKER-USER -j RETURN\n"))
	for _, r := range rules {
		if r.Iptables != "" {
			t.Errorf("mismatched chain mapped: %+v", r)
		}
	}
}

func TestRuleExprs(t *testing.T) {
	host := netip.MustParsePrefix("10.0.0.0/8")
	cases := []struct {
		m    Match
		n    int
		fail bool
	}{
		{Match{}, 1, false},
		{Match{Proto: 6, Dport: 80}, 1, false},
		{Match{Host: host}, 2, false},
		{Match{Host: host, Port: 53}, 12, false}, // 2 hosts x 3 protos x 2 ports
		{Match{Src: host, Dst: netip.MustParsePrefix("fd00::/64")}, 0, true},
		{Match{Family: 6, Src: host}, 0, true},
	}
	for _, c := range cases {
		alts, err := ruleExprs(c.m)
		if (err != nil) != c.fail || len(alts) != c.n {
			t.Errorf("%+v: %d alternatives, err %v; want %d, fail %v", c.m, len(alts), err, c.n, c.fail)
		}
	}
}

func TestTranslated(t *testing.T) {
	before := Tuple{Family: "ip", Proto: 6, Src: netip.MustParseAddr("10.0.0.1"), Dst: netip.MustParseAddr("10.0.0.2"), Sport: 1000, Dport: 80}
	for text, want := range map[string]string{
		"meta l4proto tcp counter dnat to 10.231.2.2:8000": "10.231.2.2:8000",
		"-j DNAT --to-destination 10.231.2.3":              "10.231.2.3:80",
		"dnat ip6 to [fd00::1]:8080":                       "[fd00::1]:8080",
		"-j MASQUERADE":                                    "",
		"dnat to ip daddr map { 10.0.0.2 : 10.0.0.9 }":     "",
		"dnat to 10.231.2.2-10.231.2.9":                    "",
	} {
		got, ok := translated(before, text)
		s := ""
		if ok {
			s = netip.AddrPortFrom(got.Dst, got.Dport).String()
		}
		if s != want {
			t.Errorf("%q: got %q want %q", text, s, want)
		}
	}
}

// TestReuseSplitsGroup: the same trace id showing up at an earlier hook (a
// recycled skb) or after the idle gap starts a new packet.
func TestReuseSplitsGroup(t *testing.T) {
	rs := Ruleset{Chains: []ChainInfo{
		{Family: "ip", Table: "filter", Name: "FORWARD", Base: true, Type: "filter", Hook: "forward", Policy: "accept"},
		{Family: "ip", Table: "nat", Name: "PREROUTING", Base: true, Type: "nat", Hook: "prerouting", Priority: -100, Policy: "accept"},
	}}
	t0 := time.Unix(1000, 0)
	ev := func(ms int, table, chain, typ, verdict string) Event {
		return Event{Netns: "n", Time: t0.Add(time.Duration(ms) * time.Millisecond), ID: 7, Type: typ,
			Family: "ip", Table: table, Chain: chain, Verdict: verdict, NFProto: "ip"}
	}
	rec := Recording{Netns: map[string]RecordedNetns{"n": {Ruleset: rs}}, Events: []Event{
		ev(0, "nat", "PREROUTING", "policy", "accept"),
		ev(1, "filter", "FORWARD", "policy", "accept"),
		ev(2, "nat", "PREROUTING", "policy", "accept"), // earlier hook: new packet
		ev(3, "filter", "FORWARD", "policy", "accept"),
		ev(500, "filter", "FORWARD", "policy", "accept"), // after idle: new packet
	}}
	ds := Replay(rec, 0)
	if len(ds) != 3 || len(ds[0].Steps) != 2 || len(ds[1].Steps) != 2 || len(ds[2].Steps) != 1 {
		t.Fatalf("got %d decisions: %+v", len(ds), ds)
	}
	if ds[0].Hook != "forward" || ds[0].Kind != "policy" || ds[0].Verdict != "accept" {
		t.Errorf("first decision %+v", ds[0])
	}
}

// TestRejectAndOwnTable: a drop by a reject rule is reported as reject, and
// pktdrop's own table never shows up in the steps.
func TestRejectAndOwnTable(t *testing.T) {
	rs := Ruleset{
		Chains: []ChainInfo{
			{Family: "inet", Table: "pktdrop_1", Name: "prerouting", Base: true, Type: "filter", Hook: "prerouting", Priority: -1 << 31, Policy: "accept"},
			{Family: "ip", Table: "filter", Name: "INPUT", Base: true, Type: "filter", Hook: "input", Policy: "accept"},
		},
		Rules: []RuleInfo{{Family: "ip", Table: "filter", Chain: "INPUT", Handle: 9,
			Text:     "meta l4proto udp counter packets 0 bytes 0 reject",
			Iptables: "-A INPUT -p udp -j REJECT --reject-with icmp-port-unreachable"}},
	}
	t0 := time.Unix(1000, 0)
	rec := Recording{Netns: map[string]RecordedNetns{"n": {Inode: 42, Ruleset: rs}}, Events: []Event{
		{Netns: "n", Time: t0, ID: 1, Type: "policy", Family: "inet", Table: "pktdrop_1", Chain: "prerouting", Verdict: "accept", NFProto: "ip"},
		{Netns: "n", Time: t0, ID: 1, Type: "rule", Family: "ip", Table: "filter", Chain: "INPUT", Handle: 9, Verdict: "drop", NFProto: "ip"},
	}}
	ds := Replay(rec, 0)
	if len(ds) != 1 {
		t.Fatalf("got %+v", ds)
	}
	d := ds[0]
	if d.Verdict != "reject" || d.Kind != "rule" || d.Hook != "input" || d.NetnsInode != 42 || len(d.Steps) != 1 ||
		d.IptablesRule != rs.Rules[0].Iptables {
		t.Errorf("got %+v", d)
	}
}
