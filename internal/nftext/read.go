// Package nftext renders nf_tables rules as text from their netlink
// expressions: nft syntax, and the iptables-save form for tables that
// iptables-nft wrote. It needs no nft or iptables binary, so rule text works
// in a scratch image; the binaries stay preferred where present because
// their text is authoritative.
package nftext

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/google/nftables"
)

// Rule is one rule's text. Iptables is set only for rules of an
// iptables-nft table whose every expression has an iptables form.
type Rule struct {
	Family   string
	Table    string
	Chain    string
	Handle   uint64
	Text     string
	Iptables string
}

var familyNames = map[nftables.TableFamily]string{
	nftables.TableFamilyIPv4: "ip", nftables.TableFamilyIPv6: "ip6", nftables.TableFamilyINet: "inet",
	nftables.TableFamilyBridge: "bridge", nftables.TableFamilyNetdev: "netdev", nftables.TableFamilyARP: "arp",
}

// IptablesTable says whether iptables-nft may have written the table.
func IptablesTable(family, table string) bool {
	switch table {
	case "filter", "nat", "mangle", "raw", "security":
		return family == "ip" || family == "ip6"
	}
	return false
}

// Read renders every rule the conn's netns holds, in chain order.
func Read(conn *nftables.Conn) ([]Rule, error) {
	chains, err := conn.ListChains()
	if err != nil {
		return nil, fmt.Errorf("list chains: %w", err)
	}
	sets := map[*nftables.Table]map[string]*set{}
	var out []Rule
	for _, ch := range chains {
		fam := familyNames[ch.Table.Family]
		rules, err := conn.GetRules(ch.Table, ch)
		if err != nil {
			return nil, fmt.Errorf("list rules of %s %s %s: %w", fam, ch.Table.Name, ch.Name, err)
		}
		tsets := setsOf(conn, ch.Table, sets)
		for _, r := range rules {
			t := Rule{Family: fam, Table: ch.Table.Name, Chain: ch.Name, Handle: r.Handle}
			t.Text = Nft(fam, r.Exprs, tsets)
			comment, hasComment := Comment(r.UserData)
			if hasComment {
				t.Text += " comment " + strconv.Quote(comment)
			}
			// Where iptables-nft would print a rule comment kept in
			// userdata is not known here: such a rule keeps nft syntax.
			if IptablesTable(fam, ch.Table.Name) && !hasComment {
				if s, ok := Iptables(fam, ch.Name, r.Exprs); ok {
					t.Iptables = s
				}
			}
			out = append(out, t)
		}
	}
	return out, nil
}

type set struct {
	*nftables.Set
	elems []nftables.SetElement
}

// setsOf reads a table's sets once; a set that cannot be read renders as
// its name (@name), which is still what nft prints for named sets.
func setsOf(conn *nftables.Conn, t *nftables.Table, cache map[*nftables.Table]map[string]*set) map[string]*set {
	for k, v := range cache {
		if k.Name == t.Name && k.Family == t.Family {
			return v
		}
	}
	m := map[string]*set{}
	cache[t] = m
	ss, err := conn.GetSets(t)
	if err != nil {
		return m
	}
	for _, s := range ss {
		e := &set{Set: s}
		if s.Anonymous {
			e.elems, _ = conn.GetSetElements(s)
		}
		m[s.Name] = e
	}
	return m
}

// Comment reads a rule's comment from its userdata: TLVs of u8 type, u8
// length, value; NFTNL_UDATA_RULE_COMMENT (0) is a NUL-terminated string.
func Comment(udata []byte) (string, bool) {
	for len(udata) >= 2 {
		typ, n := udata[0], int(udata[1])
		if len(udata) < 2+n {
			break
		}
		if typ == 0 {
			v := string(udata[2 : 2+n])
			if i := strings.IndexByte(v, 0); i >= 0 {
				v = v[:i]
			}
			return v, true
		}
		udata = udata[2+n:]
	}
	return "", false
}
