package nfstate

import "strings"

// Narrow drops the deciders whose rule text asks for an input or output
// device other than the chain's in and out (each "" when unknown), and then the
// candidates left with no decider and a policy that accepts. A packet
// that came in on br-a cannot have matched `-i br-b -j DROP`: with many
// Docker networks this leaves the rule of the two networks concerned.
func (f *Finding) Narrow(devices func(*Chain) (in, out string)) {
	var cands []*Chain
	var decs [][]Decider
	for i, c := range f.Candidates {
		in, out := devices(c)
		var keep []Decider
		for _, d := range f.Deciders[i] {
			ok := couldMatch(d.Rule.Text, in, out)
			for _, j := range d.Via {
				ok = ok && couldMatch(j.Text, in, out)
			}
			if ok {
				keep = append(keep, d)
			}
		}
		if len(keep) > 0 || c.Policy == "drop" {
			cands, decs = append(cands, c), append(decs, unique(keep))
		}
	}
	f.Candidates, f.Deciders = cands, decs
}

// couldMatch reads the device matches of a rule in iptables-save form
// (-i, -o, negated with !) or nft syntax (iifname, oifname, != ).
func couldMatch(text, in, out string) bool {
	w := strings.Fields(text)
	for i := 0; i+1 < len(w); i++ {
		var dev string
		switch w[i] {
		case "-i", "--in-interface", "iifname":
			dev = in
		case "-o", "--out-interface", "oifname":
			dev = out
		default:
			continue
		}
		neg := i > 0 && w[i-1] == "!"
		arg := w[i+1]
		if arg == "!=" && i+2 < len(w) {
			neg, arg = true, w[i+2]
		}
		arg = strings.Trim(arg, `"`)
		if dev == "" || strings.ContainsAny(arg, "*+{@") {
			continue // unknown device, or a wildcard or set
		}
		if (arg == dev) == neg {
			return false
		}
	}
	return true
}
