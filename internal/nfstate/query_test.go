package nfstate

import (
	"reflect"
	"testing"
)

func state() *State {
	return &State{
		Links: map[string]Link{"eth0": {Name: "eth0", Kind: "veth"}, "br0": {Name: "br0", Kind: "bridge"},
			"p1": {Name: "p1", Kind: "veth", Master: "br0", MasterKind: "bridge"},
			"p2": {Name: "p2", Kind: "veth", Master: "br0", MasterKind: "bridge"}},
		BrNetfilter: map[string]bool{},
		Chains: []*Chain{
			{Family: "ip", Table: "filter", Name: "FORWARD", Base: true, Hook: "forward", Prio: 0, Policy: "accept", Backend: "iptables-nft",
				Rules: []Rule{{Verdict: "jump", Target: "KUBE-SERVICES"}}},
			{Family: "ip", Table: "filter", Name: "KUBE-SERVICES", Backend: "iptables-nft",
				Rules: []Rule{{Verdict: "reject", Reject: "icmp port-unreachable", Text: `-A KUBE-SERVICES -m comment --comment "a/b has no endpoints" -j REJECT`}}},
			{Family: "inet", Table: "fw", Name: "fwd", Base: true, Hook: "forward", Prio: 10, Policy: "accept", Backend: "nft"},
			{Family: "ip", Table: "mangle", Name: "FORWARD", Base: true, Hook: "forward", Prio: -150, Policy: "drop", Backend: "iptables-nft"},
			{Family: "netdev", Table: "nd", Name: "in", Base: true, Hook: "ingress", Device: "eth1", Policy: "drop", Backend: "nft"},
			{Family: "bridge", Table: "br", Name: "forward", Base: true, Hook: "forward", Prio: 0, Policy: "accept", Backend: "nft",
				Rules: []Rule{{Verdict: "drop", Text: "ip daddr 10.0.0.1 drop"}}},
		},
	}
}

func refs(cs []*Chain) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Ref())
	}
	return out
}

func TestFind(t *testing.T) {
	for _, tc := range []struct {
		name      string
		q         Query
		want, all []string
	}{
		{"bracket before filter: only chains in (-1, 49]", Query{Family: "ipv4", Hook: "FORWARD", Iface: "eth0", Lo: -1, Hi: 49, Bounded: true},
			[]string{"ip filter FORWARD"}, []string{"ip filter FORWARD", "inet fw fwd"}},
		{"bracket before mangle", Query{Family: "ipv4", Hook: "FORWARD", Iface: "eth0", Lo: -151, Hi: -101, Bounded: true},
			[]string{"ip mangle FORWARD"}, []string{"ip mangle FORWARD"}},
		{"no bracket: every chain at the hook that can drop", Query{Family: "ipv4", Hook: "FORWARD", Iface: "eth0"},
			[]string{"ip filter FORWARD", "ip mangle FORWARD"}, nil},
		{"ipv6 sees no ip tables", Query{Family: "ipv6", Hook: "FORWARD", Iface: "eth0"}, nil, []string{"inet fw fwd"}},
		{"exact names from the probe", Query{Family: "ipv4", Hook: "FORWARD", Table: "mangle", Chain: "FORWARD"},
			[]string{"ip mangle FORWARD"}, nil},
		{"exact names win over an earlier hook on the path", Query{Family: "ipv4", Hook: "PREROUTING", Iface: "p2", Table: "br", Chain: "forward"},
			[]string{"bridge br forward"}, nil},
		{"no hook seen: a netdev chain of this device only", Query{Family: "ipv6", Iface: "eth1"},
			[]string{"netdev nd in"}, nil},
		{"bridged without br_netfilter: the bridge family only", Query{Family: "ipv4", Iface: "p2"},
			[]string{"bridge br forward"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := state().Find(tc.q)
			if got := refs(f.Candidates); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("candidates = %v, want %v", got, tc.want)
			}
			if tc.all != nil {
				if got := refs(f.All); !reflect.DeepEqual(got, tc.all) {
					t.Errorf("all = %v, want %v", got, tc.all)
				}
			}
		})
	}
}

func TestFindBridgeAndOwner(t *testing.T) {
	f := state().Find(Query{Family: "ipv4", Iface: "p1"})
	if f.Bridge != "br0" || !reflect.DeepEqual(f.Ports, []string{"p1", "p2"}) {
		t.Errorf("bridge, ports = %q, %v", f.Bridge, f.Ports)
	}
	f = state().Find(Query{Family: "ipv4", Hook: "FORWARD", Iface: "eth0", Lo: -1, Hi: 49, Bounded: true})
	if len(f.Deciders) != 1 || len(f.Deciders[0]) != 1 || f.Deciders[0][0].Chain.Name != "KUBE-SERVICES" {
		t.Fatalf("deciders = %+v", f.Deciders)
	}
	if o := Owners(f.Deciders[0]); !reflect.DeepEqual(o, []string{"kube-proxy"}) {
		t.Errorf("owners = %v", o)
	}
	if f.Docker {
		t.Error("Docker without Docker's chains")
	}
}

func TestOwner(t *testing.T) {
	for chain, want := range map[string]string{"KUBE-SVC-X": "kube-proxy", "DOCKER-ISOLATION-STAGE-2": "Docker",
		"DOCKER-USER": "", "cali-fw-x": "Calico", "CILIUM_FORWARD": "Cilium", "FLANNEL-FWD": "flannel", "FORWARD": ""} {
		if got := Owner("filter", chain); got != want {
			t.Errorf("Owner(%s) = %q, want %q", chain, got, want)
		}
	}
}

func TestWithin(t *testing.T) {
	b := [8]int32{-301, -201, -151, -101, -1, 49, 99, 101}
	if q := (Query{Lo: -1, Bounded: true}).Within(b); q.Hi != 49 {
		t.Errorf("Hi = %d, want 49", q.Hi)
	}
	if q := (Query{Lo: 101, Bounded: true}).Within(b); q.Hi != 1<<31-1 {
		t.Errorf("after the last bracket Hi = %d", q.Hi)
	}
}

func TestParseText(t *testing.T) {
	m := parseNft("table ip myfilter { # handle 3\n\tset blocked { # handle 2\n\t\ttype ipv4_addr\n\t}\n\tchain forward { # handle 1\n" +
		"\t\ttype filter hook forward priority filter; policy accept;\n\t\tip daddr @blocked counter drop # handle 4\n\t}\n}\n")
	if got := m[ruleKey{"ip", "myfilter", 4}]; got != "ip daddr @blocked counter drop" {
		t.Errorf("rule 4 = %q", got)
	}
	if len(m) != 1 {
		t.Errorf("rules = %v", m)
	}
	for text, want := range map[string]string{"-A F -j REJECT --reject-with tcp-reset": "tcp reset",
		"-A F -j REJECT --reject-with icmp-host-prohibited": "icmp host-prohibited", "-A F -j REJECT": "icmp port-unreachable"} {
		if got := rejectFromText(text); got != want {
			t.Errorf("rejectFromText(%q) = %q, want %q", text, got, want)
		}
	}
}

func TestCouldMatch(t *testing.T) {
	for _, tc := range []struct {
		text, in, out string
		want          bool
	}{
		{"-A DOCKER-ISOLATION-STAGE-2 -o br-b -j DROP", "br-a", "br-b", true},
		{"-A DOCKER-ISOLATION-STAGE-2 -o br-c -j DROP", "br-a", "br-b", false},
		{"-A DOCKER-ISOLATION-STAGE-1 -i br-a ! -o br-a -j DOCKER-ISOLATION-STAGE-2", "br-a", "br-a", false},
		{"-A DOCKER-ISOLATION-STAGE-1 ! -s 172.30.4.0/24 -o br-i -j DROP", "br-a", "", true},
		{`iifname "eth0" drop`, "eth1", "", false},
		{`iifname != "eth0" drop`, "eth1", "", true},
		{`oifname "veth*" drop`, "", "eth1", true},
		{"-A FORWARD -i br-x -o br-x -j DROP", "br-x", "br-x", true},
	} {
		if got := couldMatch(tc.text, tc.in, tc.out); got != tc.want {
			t.Errorf("couldMatch(%q, %q, %q) = %v, want %v", tc.text, tc.in, tc.out, got, tc.want)
		}
	}
}

func TestNarrowFollowsJumps(t *testing.T) {
	st := &State{Links: map[string]Link{}, Chains: []*Chain{
		{Family: "ip", Table: "filter", Name: "FORWARD", Base: true, Hook: "forward", Policy: "drop", Backend: "iptables-nft",
			Rules: []Rule{{Verdict: "jump", Target: "S1", Text: "-A FORWARD -j S1"},
				{Verdict: "drop", Text: "-A FORWARD -i br-x -o br-x -j DROP"}}},
		{Family: "ip", Table: "filter", Name: "S1", Backend: "iptables-nft",
			Rules: []Rule{{Verdict: "jump", Target: "S2", Text: "-A S1 -i br-y ! -o br-y -j S2"},
				{Verdict: "jump", Target: "S2", Text: "-A S1 -i br-x ! -o br-x -j S2"}}},
		{Family: "ip", Table: "filter", Name: "S2", Backend: "iptables-nft",
			Rules: []Rule{{Verdict: "drop", Text: "-A S2 -o br-x -j DROP"}, {Verdict: "drop", Text: "-A S2 -o br-z -j DROP"}}},
	}}
	f := st.Find(Query{Family: "ipv4", Hook: "FORWARD"})
	f.Narrow(func(*Chain) (string, string) { return "br-x", "br-x" })
	if len(f.Deciders) != 1 || len(f.Deciders[0]) != 1 || f.Deciders[0][0].Chain.Name != "FORWARD" {
		t.Errorf("deciders = %+v, want only FORWARD's -i br-x -o br-x rule", f.Deciders)
	}
	// Routed from br-x to br-z: S2 reached by the second jump only.
	f = st.Find(Query{Family: "ipv4", Hook: "FORWARD"})
	f.Narrow(func(*Chain) (string, string) { return "br-x", "br-z" })
	if len(f.Deciders) != 1 || len(f.Deciders[0]) != 1 || f.Deciders[0][0].Rule.Text != "-A S2 -o br-z -j DROP" {
		t.Errorf("deciders = %+v, want only S2's -o br-z rule", f.Deciders)
	}
}
