package pods

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// engineOwners asks a Docker Engine API socket (dockerd, or podman's
// compatible service) for its running containers.
func engineOwners(ctx context.Context, sock, hostRoot string) (map[uint32]Owner, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", sock)
	}}}
	defer c.CloseIdleConnections()
	get := func(path string, v any) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://engine"+path, nil)
		if err != nil {
			return err
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("%s: %s", path, resp.Status)
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	var list []struct {
		ID     string `json:"Id"`
		Names  []string
		Labels map[string]string
	}
	if err := get("/containers/json", &list); err != nil {
		return nil, fmt.Errorf("list containers on %s: %w", sock, err)
	}
	out := map[uint32]Owner{}
	for _, ct := range list {
		var in struct {
			State      struct{ Pid int }
			HostConfig struct{ NetworkMode string }
		}
		if err := get("/containers/"+ct.ID+"/json", &in); err != nil {
			continue
		}
		if in.HostConfig.NetworkMode == "host" {
			continue
		}
		ino, path := procNetns(hostRoot, in.State.Pid)
		if ino == 0 {
			continue
		}
		o := Owner{Kind: "container", NetnsPath: path}
		if len(ct.Names) > 0 {
			o.Name = strings.TrimPrefix(ct.Names[0], "/")
		}
		// cri-dockerd's containers: the pod, not the container.
		if l := ct.Labels; l["io.kubernetes.pod.name"] != "" {
			o = Owner{Kind: "pod", Namespace: l["io.kubernetes.pod.namespace"], Name: l["io.kubernetes.pod.name"],
				UID: l["io.kubernetes.pod.uid"], NetnsPath: path}
		}
		if prev, ok := out[ino]; ok && prev.Kind == "container" && o.Kind == "container" {
			prev.Containers = append(prev.Containers, o.Name) // --network container:...
			out[ino] = prev
			continue
		}
		out[ino] = o
	}
	return out, nil
}
