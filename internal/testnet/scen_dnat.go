package testnet

import (
	"fmt"
	"testing"
	"time"
)

// kube-proxy style chain names for the Traefik "web" LoadBalancer service
// of field case 4 (the hashes are the ones in the original report).
const (
	kubeExt = "KUBE-EXT-UQMCRMJZLI3FTLDP"
	kubeSvc = "KUBE-SVC-UQMCRMJZLI3FTLDP"
	kubeSep = "KUBE-SEP-2ZQDXW3YDJ2ANCKE"

	vmIP     = "10.231.4.3"
	traefik  = "10.232.0.5"
	hostIP   = routerIn
	webPort  = 80
	podPort  = 8000 // Traefik's "web" entrypoint inside the pod
	fetchTTL = 3 * time.Second
)

// DNATShadowed is field case 4 (nothing dropped). The "host" DNATs tcp/80
// on its address to a VM, but PREROUTING first jumps to KUBE-SERVICES,
// whose Traefik LoadBalancer rule DNATs the same packets to the pod. The
// client's connection completes — at the pod, not the VM. Both listen
// and answer with their name, so Trigger can tell which one was reached.
func DNATShadowed(tb testing.TB) *Scenario {
	tb.Helper()
	return dnatShadowed(tb, "iptables-nft")
}

// DNATShadowedLegacy is DNATShadowed with iptables-legacy, as kube-proxy
// writes it on hosts whose iptables is the legacy one.
func DNATShadowedLegacy(tb testing.TB) (*Scenario, error) {
	tb.Helper()
	if err := haveLegacy(tb, "iptables-legacy"); err != nil {
		return nil, err
	}
	s := dnatShadowed(tb, "iptables-legacy")
	s.Name += "Legacy"
	return s, nil
}

func dnatShadowed(tb testing.TB, tool string) *Scenario {
	tb.Helper()
	n := New(tb)
	c, h, vm, pod := n.NS("client"), n.NS("host"), n.NS("vm"), n.NS("traefik")
	n.Link(c, "cl0", clientIP+"/24", h, "eth0", hostIP+"/24")
	n.Link(h, "wg0", "10.231.4.1/24", vm, "eth0", vmIP+"/24")
	n.Link(h, "cni0", "10.232.0.1/24", pod, "eth0", traefik+"/24")
	vm.Route("default", "via", "10.231.4.1")
	pod.Route("default", "via", "10.232.0.1")
	h.MustSysctl("net.ipv4.ip_forward", "1")
	for _, l := range []struct {
		ns     *NS
		port   int
		banner string
	}{{vm, webPort, "vm"}, {pod, podPort, "traefik"}} {
		if err := l.ns.ListenTCP(l.port, l.banner); err != nil {
			tb.Fatalf("testnet: %v", err)
		}
	}
	dport := fmt.Sprint(webPort)
	sep := fmt.Sprintf("%s:%d", traefik, podPort)
	ipt(tb, h, tool,
		[]string{"-t", "nat", "-N", "KUBE-SERVICES"},
		[]string{"-t", "nat", "-N", kubeExt},
		[]string{"-t", "nat", "-N", kubeSvc},
		[]string{"-t", "nat", "-N", kubeSep},
		[]string{"-t", "nat", "-A", "PREROUTING", "-m", "comment", "--comment", "kubernetes service portals", "-j", "KUBE-SERVICES"},
		[]string{"-t", "nat", "-A", "KUBE-SERVICES", "-d", hostIP + "/32", "-p", "tcp", "-m", "comment", "--comment", "kube-system/traefik:web loadbalancer IP", "-m", "tcp", "--dport", dport, "-j", kubeExt},
		[]string{"-t", "nat", "-A", kubeExt, "-m", "comment", "--comment", "route LOCAL traffic for kube-system/traefik:web external destinations", "-j", kubeSvc},
		[]string{"-t", "nat", "-A", kubeSvc, "-m", "comment", "--comment", "kube-system/traefik:web -> " + sep, "-j", kubeSep},
		[]string{"-t", "nat", "-A", kubeSep, "-p", "tcp", "-m", "comment", "--comment", "kube-system/traefik:web", "-m", "tcp", "-j", "DNAT", "--to-destination", sep},
		// The user's rule, added long before k3s: never reached.
		[]string{"-t", "nat", "-A", "PREROUTING", "-d", hostIP + "/32", "-p", "tcp", "--dport", dport, "-j", "DNAT", "--to-destination", fmt.Sprintf("%s:%d", vmIP, webPort)},
	)
	return &Scenario{
		Name: "DNATShadowed", Net: n, Client: c, Router: h, Server: vm,
		Others: map[string]*NS{"traefik": pod},
		Trigger: func() error {
			got, err := c.Fetch(hostIP, webPort, fetchTTL)
			if err != nil {
				return err
			}
			if got != "traefik" {
				return fmt.Errorf("connection to %s:%d reached %q, want the traefik pod", hostIP, webPort, got)
			}
			return nil
		},
		Notes: []string{"iptables backend: " + tool},
		Expect: Expect{
			Netns: h.Name(), Iface: "eth0",
			Src: clientIP, Dst: hostIP, Proto: "tcp", DstPort: webPort,
			NAT: []NAT{{
				Hook: "PREROUTING", Table: "nat",
				Chains:  []string{"PREROUTING", "KUBE-SERVICES", kubeExt, kubeSvc, kubeSep},
				Comment: "kube-system/traefik:web",
				From:    fmt.Sprintf("%s:%d", hostIP, webPort), To: sep,
			}},
			Shadowed: fmt.Sprintf("-A PREROUTING -d %s/32 -p tcp -m tcp --dport %d -j DNAT --to-destination %s:%d", hostIP, webPort, vmIP, webPort),
			Path:     []string{"eth0", "PREROUTING", "FORWARD", "POSTROUTING", "cni0"},
		},
	}
}

// DNATBridge is field case 5 (nothing dropped): host:8080 arriving on
// eth0 is DNATed to ns1:80 behind br0 (veth1b is the bridge port, veth1a
// the end in ns1). The reply is un-DNATed by conntrack; no nat rule sees it.
func DNATBridge(tb testing.TB) *Scenario {
	tb.Helper()
	const (
		ns1IP = "10.232.1.2"
		brIP  = "10.232.1.3"
		port  = 8080
	)
	n := New(tb)
	c, h, ns1 := n.NS("client"), n.NS("host"), n.NS("ns1")
	n.Link(c, "cl0", clientIP+"/24", h, "eth0", hostIP+"/24")
	h.MustRun("ip", "link", "add", "br0", "type", "bridge")
	h.Addr("br0", brIP+"/24")
	h.MustRun("ip", "link", "set", "br0", "up")
	n.Link(ns1, "veth1a", ns1IP+"/24", h, "veth1b", "")
	h.MustRun("ip", "link", "set", "veth1b", "master", "br0")
	ns1.Route("default", "via", brIP)
	h.MustSysctl("net.ipv4.ip_forward", "1")
	if err := ns1.ListenTCP(webPort, "ns1"); err != nil {
		tb.Fatalf("testnet: %v", err)
	}
	to := fmt.Sprintf("%s:%d", ns1IP, webPort)
	ipt(tb, h, "iptables-nft",
		[]string{"-t", "nat", "-A", "PREROUTING", "-d", hostIP, "-p", "tcp", "--dport", fmt.Sprint(port), "-i", "eth0", "-j", "DNAT", "--to", to})
	return &Scenario{
		Name: "DNATBridge", Net: n, Client: c, Router: h, Server: ns1,
		Trigger: func() error {
			got, err := c.Fetch(hostIP, port, fetchTTL)
			if err != nil {
				return err
			}
			if got != "ns1" {
				return fmt.Errorf("connection to %s:%d answered %q, want ns1", hostIP, port, got)
			}
			return nil
		},
		Expect: Expect{
			Netns: h.Name(), Iface: "eth0",
			Src: clientIP, Dst: hostIP, Proto: "tcp", DstPort: port,
			NAT: []NAT{{
				Hook: "PREROUTING", Table: "nat", Chains: []string{"PREROUTING"},
				From: fmt.Sprintf("%s:%d", hostIP, port), To: to,
			}},
			Path:      []string{"eth0", "PREROUTING", "FORWARD", "POSTROUTING", "br0", "veth1b", "veth1a"},
			ReplyPath: []string{"veth1a", "veth1b", "br0", "conntrack", "FORWARD", "POSTROUTING", "eth0"},
		},
	}
}
