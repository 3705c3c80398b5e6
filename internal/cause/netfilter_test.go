package cause_test

import (
	"strings"
	"testing"

	"github.com/pktdrop/pktdrop/internal/cause"
	"github.com/pktdrop/pktdrop/internal/nfstate"
	"github.com/pktdrop/pktdrop/internal/recorded"
	"github.com/pktdrop/pktdrop/internal/report"
)

// tables is a System whose namespace has these netfilter chains.
type tables struct {
	*recorded.System
	st *nfstate.State
}

func (t tables) NetfilterFind(_ uint32, q nfstate.Query) (*nfstate.Finding, error) {
	if q.Bracket == "filter" {
		q.Lo, q.Bounded = -1, true
	}
	return t.st.Find(q.Within([8]int32{-301, -201, -151, -101, -1, 49, 99, 101})), nil
}

func withChains(chains ...*nfstate.Chain) cause.System {
	return tables{system(routerNS, nil), &nfstate.State{Chains: chains, Links: map[string]nfstate.Link{}}}
}

func bracketPath() []report.Step {
	p := fwdPath()
	p[len(p)-1].Detail = "reached table filter"
	return p
}

func TestNetfilterTables(t *testing.T) {
	fwd := func(fam, table, policy, backend string, rules ...nfstate.Rule) *nfstate.Chain {
		return &nfstate.Chain{Family: fam, Table: table, Name: "FORWARD", Base: true, Hook: "forward", Policy: policy,
			Backend: backend, Rules: rules}
	}
	drop := nfstate.Rule{Verdict: "drop", Text: "ip daddr 10.0.2.2 drop"}
	for _, tc := range []struct {
		name  string
		sys   cause.System
		want  expect
		table string
	}{
		{"native table named, no policy, no Docker", withChains(fwd("ip", "myfilter", "accept", "nft", drop)),
			expect{cause: "netfilter", explanation: []string{"table ip myfilter", "ip daddr 10.0.2.2 drop"},
				notExpl: []string{"policy"}, hint: []string{`nft insert rule ip myfilter FORWARD iifname "veth-rc" accept`},
				notHint: []string{"Docker", "policy is"}, evidence: map[string]string{"table": "ip myfilter"}}, "myfilter"},
		{"policy DROP with Docker's chains", withChains(fwd("ip", "filter", "drop", "iptables-nft",
			nfstate.Rule{Verdict: "jump", Target: "DOCKER-USER"}), &nfstate.Chain{Family: "ip", Table: "filter", Name: "DOCKER-USER",
			Backend: "iptables-nft", Rules: []nfstate.Rule{{Verdict: "return"}}}),
			expect{cause: "netfilter", explanation: []string{"policy is DROP"},
				hint: []string{"Docker sets it", "`iptables -I DOCKER-USER -i veth-rc -j ACCEPT`",
					"`iptables -I DOCKER-USER -o veth-rc -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`"},
				evidence: map[string]string{"policy": "drop", "docker_chains": "present"}}, "filter"},
		{"two tables fit: both listed, none named", withChains(fwd("ip", "a", "accept", "nft", drop), fwd("inet", "b", "drop", "nft")),
			expect{cause: "netfilter", explanation: []string{"one of: table ip a chain FORWARD; table inet b chain FORWARD"},
				notHint: []string{"insert"}}, ""},
		{"nothing at that priority: no table invented", withChains(), expect{cause: "netfilter", notExpl: []string{"table"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := routerDrop("NETFILTER_DROP", "nft_do_chain+0x44")
			r.Path = bracketPath()
			cause.Infer(r, tc.sys)
			tc.want.check(t, r)
			if r.Table != tc.table {
				t.Errorf("table = %q, want %q", r.Table, tc.table)
			}
			if tc.table != "" && !strings.Contains(r.Path[len(r.Path)-1].Detail, tc.table) {
				t.Errorf("path still names the bracket's guess: %q", r.Path[len(r.Path)-1].Detail)
			}
		})
	}
}
