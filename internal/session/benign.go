package session

import (
	"github.com/pktdrop/pktdrop/internal/benign"
	"github.com/pktdrop/pktdrop/internal/netns"
	"github.com/pktdrop/pktdrop/internal/output"
	"github.com/pktdrop/pktdrop/internal/report"
)

// newBenign asks the namespaces of res about sockets; TCP states are named
// from the kernel's BTF once the background load is done.
func newBenign(res *netns.Resolver, e *enricher) *benign.Classifier {
	states := func() map[uint8]string {
		if en := e.b.Names.Enums; en != nil {
			return en.TCPState
		}
		return nil
	}
	return benign.New(benign.NetnsSockets{NS: res, States: states}, states)
}

// skipBenign counts a benign free in the summary without writing it,
// unless --all asked for them.
func skipBenign(o Options, out *output.Writer, r *report.Report) bool {
	if !r.Benign || o.All {
		return false
	}
	out.Summary().Add(r)
	return true
}
