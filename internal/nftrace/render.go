package nftrace

import (
	"fmt"
	"os/exec"

	"github.com/google/nftables"

	"github.com/pktdrop/pktdrop/internal/nftext"
)

// can tells whether the binary name can run in the netns: a scratch image
// has neither it nor nsenter.
func (ns *nsHandle) can(name string) bool {
	if _, err := exec.LookPath(name); err != nil {
		return false
	}
	if ns.current {
		return true
	}
	_, err := exec.LookPath("nsenter")
	return err == nil
}

// renderRules gives rules their text from their netlink expressions when
// the binaries are absent; the conn is already in the netns, so no
// nsenter either. all replaces every rule; otherwise only missing
// iptables-save forms are filled in.
func renderRules(conn *nftables.Conn, rs *Ruleset, all bool) {
	rules, err := nftext.Read(conn)
	if err != nil {
		rs.Note = fmt.Sprintf("rule text unavailable: %v", err)
		return
	}
	if all {
		rs.Rules = rs.Rules[:0]
		for _, r := range rules {
			rs.Rules = append(rs.Rules, RuleInfo{Family: r.Family, Table: r.Table, Chain: r.Chain,
				Handle: r.Handle, Text: r.Text, Iptables: r.Iptables})
		}
		return
	}
	byKey := map[ruleKey]string{}
	for _, r := range rules {
		byKey[ruleKey{r.Family, r.Table, r.Handle}] = r.Iptables
	}
	for i := range rs.Rules {
		r := &rs.Rules[i]
		if r.Iptables == "" {
			r.Iptables = byKey[ruleKey{r.Family, r.Table, r.Handle}]
		}
	}
}
