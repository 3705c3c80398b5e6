package filterexpr

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"

	"github.com/pktdrop/pktdrop/gen"
)

func TestVerifierScratch(t *testing.T) {
	if os.Getenv("PD_SCRATCH") == "" {
		t.Skip()
	}
	_ = rlimit.RemoveMemlock()
	for _, s := range []string{"", "tcp and src host 192.0.2.1 and dst host 10.213.77.2 and src port 1 and dst port 5201", os.Getenv("PD_SCRATCH")} {
		spec, err := gen.LoadPktdrop()
		if err != nil {
			t.Fatal(err)
		}
		e, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range e.Constants() {
			spec.Variables[k].Set(v)
		}
		spec.Variables["cfg_path"].Set(uint8(1))
		for _, name := range []string{"tpb_kfree_skb", "tpb_netif_receive_skb", "tp_kfree_skb"} {
			ps := spec.Programs[name]
			if ps == nil {
				for n := range spec.Programs {
					t.Log(n)
				}
				t.Fatal(name)
			}
			coll, err := ebpf.NewCollectionWithOptions(&ebpf.CollectionSpec{Maps: spec.Maps, Programs: map[string]*ebpf.ProgramSpec{name: ps}, Variables: spec.Variables, Types: spec.Types},
				ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{LogLevel: ebpf.LogLevelStats}})
			st := time.Now()
			if err != nil {
				t.Logf("%s: %v", name, err)
				continue
			}
			log := coll.Programs[name].VerifierLog
			i := strings.Index(log, "processed")
			t.Logf("%d insns %q: %s: %s %v", e.Len(), s[:min(len(s), 30)], name, strings.TrimSpace(log[i:]), time.Since(st))
			coll.Close()
		}
	}
}
