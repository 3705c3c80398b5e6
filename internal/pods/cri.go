package pods

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	cri "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Dial connects to a CRI runtime's unix socket.
func Dial(sock string) (*grpc.ClientConn, cri.RuntimeServiceClient, error) {
	conn, err := grpc.NewClient("unix://"+sock, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, nil, fmt.Errorf("dial CRI %s: %w", sock, err)
	}
	return conn, cri.NewRuntimeServiceClient(conn), nil
}

// sandboxInfo is what containerd (and CRI-O) put in the verbose status.
type sandboxInfo struct {
	Pid         int `json:"pid"`
	RuntimeSpec struct {
		Linux struct {
			Namespaces []struct {
				Type string `json:"type"`
				Path string `json:"path"`
			} `json:"namespaces"`
		} `json:"linux"`
	} `json:"runtimeSpec"`
}

// criOwners asks the runtime at sock for its ready sandboxes: two calls per
// pod (the list does not say where a sandbox's netns is) and one for all
// containers.
func criOwners(ctx context.Context, sock, hostRoot string) (map[uint32]Owner, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	conn, rs, err := Dial(sock)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	list, err := rs.ListPodSandbox(ctx, &cri.ListPodSandboxRequest{Filter: &cri.PodSandboxFilter{
		State: &cri.PodSandboxStateValue{State: cri.PodSandboxState_SANDBOX_READY}}})
	if err != nil {
		return nil, fmt.Errorf("list pod sandboxes: %w", err)
	}
	names := map[string][]string{}
	if cs, err := rs.ListContainers(ctx, &cri.ListContainersRequest{}); err == nil {
		for _, c := range cs.Containers {
			if c.Metadata != nil && c.State != cri.ContainerState_CONTAINER_EXITED {
				names[c.PodSandboxId] = append(names[c.PodSandboxId], c.Metadata.Name)
			}
		}
	}
	out := map[uint32]Owner{}
	for _, sb := range list.Items {
		if sb.Metadata == nil {
			continue
		}
		st, err := rs.PodSandboxStatus(ctx, &cri.PodSandboxStatusRequest{PodSandboxId: sb.Id, Verbose: true})
		if err != nil {
			continue
		}
		if n := st.GetStatus().GetLinux().GetNamespaces().GetOptions(); n != nil && n.Network == cri.NamespaceMode_NODE {
			continue // hostNetwork: the host's namespace, named host
		}
		var info sandboxInfo
		if raw, ok := st.Info["info"]; ok {
			_ = json.Unmarshal([]byte(raw), &info)
		}
		o := Owner{Kind: "pod", Namespace: sb.Metadata.Namespace, Name: sb.Metadata.Name, UID: sb.Metadata.Uid,
			Containers: names[sb.Id]}
		var ino uint32
		for _, ns := range info.RuntimeSpec.Linux.Namespaces {
			if ns.Type == "network" && ns.Path != "" && !strings.HasPrefix(ns.Path, "/proc/") {
				o.NetnsPath = HostPath(hostRoot, ns.Path)
				ino = inodeOf(o.NetnsPath)
			}
		}
		if ino == 0 {
			ino, o.NetnsPath = procNetns(hostRoot, info.Pid)
		}
		if ino != 0 {
			out[ino] = o
		}
	}
	return out, nil
}
