package nfstate

import (
	"github.com/google/nftables"

	"github.com/pktdrop/pktdrop/internal/nftext"
)

// renderText gives rules their text from their netlink expressions, for a
// host or image without nft or iptables-nft-save. nftText false keeps the
// nft binary's text and renders only the iptables-save form.
func renderText(s *State, nsFd int, nftText bool) {
	conn, err := nftables.New(nftables.WithNetNSFd(nsFd))
	if err != nil {
		s.note("rule text unavailable: " + err.Error())
		return
	}
	rules, err := nftext.Read(conn)
	if err != nil {
		s.note("rule text unavailable: " + err.Error())
		return
	}
	byKey := map[ruleKey]nftext.Rule{}
	for _, r := range rules {
		byKey[ruleKey{r.Family, r.Table, r.Handle}] = r
	}
	// A standard table is iptables-nft's when each of its rules has an
	// iptables form; one rule without keeps the whole table in nft syntax.
	ipt := map[[2]string]bool{}
	for _, t := range iptablesTables(s) {
		ipt[t] = true
	}
	for _, c := range s.Chains {
		for _, r := range c.Rules {
			if byKey[ruleKey{c.Family, c.Table, r.Handle}].Iptables == "" {
				delete(ipt, [2]string{c.Family, c.Table})
			}
		}
	}
	for _, c := range s.Chains {
		isIpt := ipt[[2]string{c.Family, c.Table}]
		if isIpt {
			c.Backend = "iptables-nft"
		}
		for i := range c.Rules {
			r := byKey[ruleKey{c.Family, c.Table, c.Rules[i].Handle}]
			switch {
			case isIpt:
				c.Rules[i].Text = r.Iptables
			case nftText:
				c.Rules[i].Text = r.Text
			default:
				continue
			}
			fromText(&c.Rules[i])
		}
	}
}
