package probe

import "testing"

func TestBracketPriority(t *testing.T) {
	prios := [8]int32{-301, -201, -151, -101, -1, 49, 99, 101}
	for _, tc := range []struct {
		hook, table string
		want        int32
		ok          bool
	}{
		{"FORWARD", "filter", -1, true}, {"PREROUTING", "nat", -101, true}, {"POSTROUTING", "nat", 99, true},
		{"INPUT", "nat", 99, true}, {"PREROUTING", "raw", -301, true}, {"FORWARD", "myfilter", 0, false}, {"FORWARD", "", 0, false},
	} {
		got, ok := BracketPriority(prios, tc.hook, tc.table)
		if got != tc.want || ok != tc.ok {
			t.Errorf("BracketPriority(%s, %s) = %d, %v; want %d, %v", tc.hook, tc.table, got, ok, tc.want, tc.ok)
		}
		if ok && BracketTable(prios, got) != tc.table {
			t.Errorf("BracketTable(%d) = %q, want %q", got, BracketTable(prios, got), tc.table)
		}
	}
}
