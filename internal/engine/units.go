package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
)

// Compose labels lifeboat reads to group containers into units.
const (
	LabelProject   = "com.docker.compose.project"
	LabelService   = "com.docker.compose.service"
	LabelDependsOn = "com.docker.compose.depends_on"
)

// Container is a container as lifeboat sees it.
type Container struct {
	ID      string            `json:"id"`
	Name    string            `json:"name"`
	Image   string            `json:"image"`    // the reference it was created from
	ImageID string            `json:"image_id"` // sha256:…
	State   string            `json:"state"`    // created, running, paused, restarting, removing, exited, dead
	Labels  map[string]string `json:"labels,omitempty"`
	Project string            `json:"project,omitempty"` // com.docker.compose.project
	Service string            `json:"service,omitempty"` // com.docker.compose.service
	Mounts  []Mount           `json:"mounts,omitempty"`
	// Health is "" without a healthcheck, else starting, healthy or
	// unhealthy.
	Health string `json:"health,omitempty"`
	// DependsOn lists the services this one depends on, from Compose v2's
	// depends_on label; Compose v1 does not record it.
	DependsOn []string `json:"depends_on,omitempty"`
}

// Mount is one file system mounted into a container.
type Mount struct {
	Type        string `json:"type"`           // volume, bind, tmpfs
	Name        string `json:"name,omitempty"` // volume name
	Source      string `json:"source,omitempty"`
	Destination string `json:"destination"`
	RW          bool   `json:"rw"`
	Propagation string `json:"propagation,omitempty"`
}

// Running reports whether the container's processes exist (paused ones
// too), so quiescing it means something.
func (c Container) Running() bool {
	return c.State == "running" || c.State == "paused" || c.State == "restarting"
}

// Containers lists every container of the engine, stopped ones included,
// sorted by name.
func (c *Client) Containers(ctx context.Context) ([]Container, error) {
	list, err := c.api.ContainerList(ctx, client.ContainerListOptions{All: true})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := make([]Container, 0, len(list.Items))
	for _, s := range list.Items {
		if _, ok := s.Labels[HelperLabel]; ok {
			continue // lifeboat's own helper, gone in a moment
		}
		// The list lacks health, tmpfs mounts and the image reference as
		// given, so each container is inspected; one that vanished in
		// between is simply no longer there.
		ct, err := c.Container(ctx, s.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if pod, err := c.podOf(ctx, s.ID); err != nil {
			return nil, fmt.Errorf("list containers: %w", err)
		} else if pod.IsInfra {
			continue // a Podman pod's plumbing, no data: not a unit
		}
		out = append(out, ct)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Container inspects one container by name or ID.
func (c *Client) Container(ctx context.Context, nameOrID string) (Container, error) {
	res, err := c.api.ContainerInspect(ctx, nameOrID, client.ContainerInspectOptions{})
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return Container{}, fmt.Errorf("container %q %w: see `docker ps -a`", nameOrID, ErrNotFound)
		}
		return Container{}, fmt.Errorf("inspect container %q: %w", nameOrID, err)
	}
	return containerOf(res.Container), nil
}

func containerOf(info container.InspectResponse) Container {
	ct := Container{Mounts: []Mount{}}
	ct.ID, ct.Name, ct.ImageID = info.ID, strings.TrimPrefix(info.Name, "/"), info.Image
	if st := info.State; st != nil {
		ct.State = string(st.Status)
		if !noHealthcheck(st.Health) {
			ct.Health = string(st.Health.Status)
		}
	}
	if info.Config != nil {
		ct.Image, ct.Labels = info.Config.Image, info.Config.Labels
		ct.Project, ct.Service = ct.Labels[LabelProject], ct.Labels[LabelService]
		ct.DependsOn = parseDependsOn(ct.Labels[LabelDependsOn])
	}
	for _, m := range info.Mounts {
		ct.Mounts = append(ct.Mounts, Mount{
			Type: string(m.Type), Name: m.Name, Source: m.Source, Destination: m.Destination,
			RW: m.RW, Propagation: string(m.Propagation),
		})
	}
	// --tmpfs mounts live only in the host config; --mount type=tmpfs ones
	// are already in Mounts.
	if info.HostConfig != nil {
		for dst, opts := range info.HostConfig.Tmpfs {
			ct.Mounts = append(ct.Mounts, Mount{Type: "tmpfs", Destination: dst, RW: !hasOption(opts, "ro")})
		}
	}
	sort.Slice(ct.Mounts, func(i, j int) bool { return ct.Mounts[i].Destination < ct.Mounts[j].Destination })
	return ct
}

// parseDependsOn reads Compose v2's "svc:condition:restart,svc2:…" label
// into service names.
func parseDependsOn(label string) []string {
	var out []string
	for _, part := range strings.Split(label, ",") {
		svc, _, _ := strings.Cut(strings.TrimSpace(part), ":")
		if svc != "" {
			out = append(out, svc)
		}
	}
	return out
}

func hasOption(opts, want string) bool {
	for _, o := range strings.Split(opts, ",") {
		if strings.TrimSpace(o) == want {
			return true
		}
	}
	return false
}

// PublishedPorts maps every host port published by a running container of
// the engine ("127.0.0.1:8080/tcp", or ":8080/tcp" for all addresses) to
// the container's name, so a restore can tell a port is taken before it
// creates anything.
func (c *Client) PublishedPorts(ctx context.Context) (map[string]string, error) {
	list, err := c.api.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	out := map[string]string{}
	for _, s := range list.Items {
		name := strings.TrimPrefix(firstOr(s.Names, s.ID), "/")
		for _, p := range s.Ports {
			if p.PublicPort == 0 {
				continue
			}
			ip := ""
			if p.IP.IsValid() && !p.IP.IsUnspecified() {
				ip = p.IP.String()
			}
			out[fmt.Sprintf("%s:%d/%s", ip, p.PublicPort, p.Type)] = name
		}
	}
	return out, nil
}

func firstOr(list []string, def string) string {
	if len(list) > 0 {
		return list[0]
	}
	return def
}
