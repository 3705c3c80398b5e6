package cli

import (
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/pktdrop/pktdrop/internal/filter"
	"github.com/pktdrop/pktdrop/internal/probe"
	"github.com/pktdrop/pktdrop/internal/session"
)

func newWatch(stdout, stderr io.Writer) *cobra.Command {
	var o session.Options
	var force []string
	cmd := &cobra.Command{
		Use:   "watch [pcap-filter expression]",
		Short: "Print every packet the kernel drops, with where, why and how to fix it",
		Long: `Print every packet the kernel drops, with where, why and how to fix it

` + exprHelp,
		Example: `  pktdrop watch --proto icmp
  pktdrop watch 'icmp and host 10.42.1.7'
  pktdrop watch 'tcp[tcpflags] & (tcp-syn|tcp-rst) != 0 and not port 22'
  pktdrop watch --host 10.42.1.7 --output json
  pktdrop watch --proto udp --dport 53 --netns /proc/1234/ns/net --count 10`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Force, err = parseForce(force); err != nil {
				return err
			}
			o.Command, o.Version = commandLine(), Version
			o.Expr = strings.Join(args, " ")
			return session.Run(cmd.Context(), o, stdout, stderr)
		},
	}
	addSessionFlags(cmd.Flags(), &o, &force)
	return cmd
}

func newTrace(stdout, stderr io.Writer) *cobra.Command {
	var o session.Options
	var force []string
	cmd := &cobra.Command{
		Use:   "trace [pcap-filter expression]",
		Short: "Follow matching packets through the kernel, delivered or dropped, with each NAT step",
		Long: `trace shows the path of matching packets that are not dropped too: the hooks and
devices they cross and every address translation, so a DNAT that wins over yours,
or the way a reply is translated back, is visible without any drop.

` + exprHelp,
		Example: `  pktdrop trace --proto tcp --dport 80
  pktdrop trace 'udp and dst port 53 and net 10.0.0.0/8'
  pktdrop trace --host 192.168.1.10 --count 4`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.Force, err = parseForce(force); err != nil {
				return err
			}
			o.Command, o.Version = commandLine(), Version
			o.Expr = strings.Join(args, " ")
			o.Trace = true
			return session.Run(cmd.Context(), o, stdout, stderr)
		},
	}
	addSessionFlags(cmd.Flags(), &o, &force)
	return cmd
}

const exprHelp = `An optional pcap-filter expression, as tcpdump's, selects packets in the kernel
together with the filter flags (both must match): host, net, port, portrange,
src/dst, ip, ip6, icmp, icmp6, tcp, udp, sctp, proto N, tcp[tcpflags] and
icmp[icmptype] tests, and/or/not, parentheses.`

func addSessionFlags(fs *pflag.FlagSet, o *session.Options, force *[]string) {
	f := &o.Filter
	fs.StringVar(&f.Proto, "proto", "", "protocol: icmp, icmp6, tcp, udp, sctp or a number")
	fs.StringVar(&f.Host, "host", "", "source or destination address or CIDR")
	fs.StringVar(&f.Src, "src", "", "source address or CIDR")
	fs.StringVar(&f.Dst, "dst", "", "destination address or CIDR")
	fs.IntVar(&f.Port, "port", 0, "source or destination port")
	fs.IntVar(&f.Sport, "sport", 0, "source port")
	fs.IntVar(&f.Dport, "dport", 0, "destination port")
	fs.StringVar(&f.Iface, "iface", "", "device the packet was on when dropped")
	fs.StringVar(&f.Netns, "netns", "", "network namespace: inode, /proc/PID/ns/net, or a name under /var/run/netns")
	fs.StringVar(&o.Node.Pod, "pod", "", "only this Kubernetes pod, NAME or NAMESPACE/NAME (followed to a new sandbox)")
	fs.StringVar(&o.Node.PodNamespace, "pod-namespace", "", "namespace of --pod NAME")
	fs.StringVar(&o.Node.HostRoot, "host-root", "/", "where the node's / is mounted (/host in kubectl debug --profile=sysadmin)")
	fs.StringVar(&o.Node.CRISocket, "cri-socket", "", "container runtime (CRI) socket naming pods (default: probe containerd, k3s, CRI-O, cri-dockerd)")
	fs.StringVar(&o.Node.EngineSocket, "engine-socket", "", "Docker/podman API socket naming containers (default: /var/run/docker.sock, /run/podman/podman.sock)")
	fs.StringSliceVar(&f.Reasons, "reason", nil, "only these drop reasons (kernel names, e.g. NETFILTER_DROP)")
	fs.StringSliceVar(&f.ExcludeReasons, "exclude-reason", nil, "not these drop reasons")
	fs.StringVarP(&o.Output, "output", "o", "text", "output format: text or json (JSON Lines)")
	fs.IntVar(&o.Count, "count", 0, "stop after this many packets")
	fs.DurationVar(&o.Duration, "duration", 0, "stop after this long (e.g. 30s)")
	fs.StringVar(&o.ReadyFile, "ready-file", "", "write this file once every probe is attached")
	fs.Uint32Var(&o.RingBufSize, "ringbuf-size", 8<<20, "event ring buffer size in bytes (power of two)")
	fs.BoolVar(&o.Rules, "rules", false, "name the nftables/iptables-nft rule or chain policy that dropped or translated "+
		"the packet (installs a temporary nftables trace table, removed on exit even after SIGKILL)")
	fs.BoolVar(&o.All, "all", false, "also report benign frees (packets the kernel freed after they arrived, such as echo replies ping already got), labelled benign")
	fs.BoolVar(&o.NoPath, "no-path", false, "do not follow packets through the stack (drops only, cheapest)")
	fs.StringVarP(&o.Pcap, "pcap", "w", "", "also write each reported packet, with its report as comments, to this pcapng file (- for stdout: reports then go to stderr)")
	fs.IntVar(&o.Snaplen, "snaplen", 256, "bytes of each packet to write with --pcap, from its MAC (else IP) header")
	fs.StringSliceVar(force, "probe-mechanism", nil, "force a probe point to one mechanism, as point=mechanism (for testing fallbacks)")
	_ = fs.MarkHidden("probe-mechanism")
}

func parseForce(vals []string) (map[string]probe.Mechanism, error) {
	if len(vals) == 0 {
		return nil, nil
	}
	valid := map[string]bool{}
	for _, p := range probe.Points() {
		valid[p.Name] = true
	}
	out := map[string]probe.Mechanism{}
	for _, v := range vals {
		point, mech, ok := strings.Cut(v, "=")
		if !ok || !valid[point] {
			return nil, &filter.UsageError{Flag: "probe-mechanism", Value: v, Msg: "want point=mechanism with a point from `pktdrop probes`"}
		}
		out[point] = probe.Mechanism(mech)
	}
	return out, nil
}

// commandLine is how pktdrop was started, for the pcap file's header.
func commandLine() string {
	args := make([]string, len(os.Args))
	for i, a := range os.Args {
		args[i] = a
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$|&;<>()*?[]#~`!{}") {
			args[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(args, " ")
}
