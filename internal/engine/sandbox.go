package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"strings"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// LabelSandbox marks the containers of a restore drill's sandbox; its
// value names the sandbox.
const LabelSandbox = "lifeboat.drill.sandbox"

// Sandbox isolates a container that Create makes for a restore drill: no
// published host port, restart policy no, the sandbox's own network in
// place of the engine's default bridge, no static addresses (the
// original holds them), and no host path mounted: Mounts names the
// volume mounted at each destination instead of what the spec mounts
// there, and a bind mount without one is an error. It is marked with
// LabelSandbox and lifeboat.enable=false, so no schedule backs it up.
type Sandbox struct {
	Network string
	Mounts  map[string]string
	Label   string
	// Alone joins only Network, without aliases, links or volumes-from:
	// a scratch server beside the sandbox's own containers, which must
	// not answer to their names.
	Alone bool
}

// apply isolates a configuration Create has decoded and renamed. spec is
// Create's own copy; its Networks map is replaced, never changed.
func (s *Sandbox) apply(cfg *container.Config, hc *container.HostConfig, spec *Spec) error {
	if hc.NetworkMode.IsHost() {
		return fmt.Errorf("it uses the host's network, which a sandbox cannot isolate")
	}
	hc.PortBindings, hc.PublishAllPorts, hc.AutoRemove = nil, false, false
	hc.RestartPolicy = container.RestartPolicy{Name: container.RestartPolicyDisabled}
	cfg.Labels = maps.Clone(cfg.Labels)
	if cfg.Labels == nil {
		cfg.Labels = map[string]string{}
	}
	cfg.Labels[LabelSandbox], cfg.Labels["lifeboat.enable"] = s.Label, "false"

	if s.Alone {
		hc.NetworkMode, hc.Links, hc.VolumesFrom = "", nil, nil
		spec.Networks = nil
	}
	nets := map[string]EndpointSpec{}
	for name, ep := range spec.Networks {
		ep.IPv4Address, ep.IPv6Address, ep.LinkLocalIPs = "", "", nil
		if name == "bridge" {
			name = s.Network
		}
		nets[name] = ep
	}
	if m := hc.NetworkMode; m == "" || m.IsDefault() || m.IsBridge() {
		// An engine run with --bridge=none records its default-network
		// containers as NetworkDisabled; in the sandbox they get its
		// network, or no probe could reach them.
		hc.NetworkMode, cfg.NetworkDisabled = container.NetworkMode(s.Network), false
		if _, ok := nets[s.Network]; !ok {
			nets[s.Network] = EndpointSpec{}
		}
	}
	spec.Networks = nets
	return s.mounts(hc)
}

// mounts puts the sandbox's volumes in place of binds and of what Mounts
// names, as --mount entries.
func (s *Sandbox) mounts(hc *container.HostConfig) error {
	var binds []string
	var mounts []mount.Mount
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			binds = append(binds, b)
			continue
		}
		src, dst := parts[0], parts[1]
		ro := len(parts) > 2 && hasOption(parts[2], "ro")
		if v, ok := s.Mounts[dst]; ok {
			mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: v, Target: dst, ReadOnly: ro})
			continue
		}
		if strings.HasPrefix(src, "/") {
			return fmt.Errorf("bind mount %s has no copy in the sandbox", src)
		}
		binds = append(binds, b)
	}
	for _, m := range hc.Mounts {
		if v, ok := s.Mounts[m.Target]; ok {
			mounts = append(mounts, mount.Mount{Type: mount.TypeVolume, Source: v, Target: m.Target, ReadOnly: m.ReadOnly})
			continue
		}
		if m.Type == mount.TypeBind || m.Type == mount.TypeNamedPipe {
			return fmt.Errorf("bind mount %s has no copy in the sandbox", m.Source)
		}
		mounts = append(mounts, m)
	}
	hc.Binds, hc.Mounts = binds, mounts
	return nil
}

// SpecMounts lists what a recorded container mounts: binds (Source is
// the host path), named and anonymous volumes (Name), tmpfs.
func SpecMounts(spec Spec) ([]Mount, error) {
	var hc container.HostConfig
	if err := json.Unmarshal(spec.HostConfig, &hc); err != nil {
		return nil, fmt.Errorf("container %s: decode host config: %w", spec.Name, err)
	}
	var out []Mount
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) < 2 {
			continue
		}
		rw := !(len(parts) > 2 && hasOption(parts[2], "ro"))
		if strings.HasPrefix(parts[0], "/") {
			out = append(out, Mount{Type: "bind", Source: parts[0], Destination: parts[1], RW: rw})
		} else {
			out = append(out, Mount{Type: "volume", Name: parts[0], Destination: parts[1], RW: rw})
		}
	}
	anon := map[string]bool{}
	for _, v := range spec.AnonymousVolumes {
		anon[v.Destination] = true
	}
	for _, m := range hc.Mounts {
		if m.Type == mount.TypeVolume && m.Source == "" && anon[m.Target] {
			continue // listed with its name below
		}
		mt := Mount{Type: string(m.Type), Destination: m.Target, RW: !m.ReadOnly}
		if m.Type == mount.TypeVolume {
			mt.Name = m.Source
		} else {
			mt.Source = m.Source
		}
		out = append(out, mt)
	}
	for _, v := range spec.AnonymousVolumes {
		out = append(out, Mount{Type: "volume", Name: v.Name, Destination: v.Destination, RW: v.RW})
	}
	for dst, opts := range hc.Tmpfs {
		out = append(out, Mount{Type: "tmpfs", Destination: dst, RW: !hasOption(opts, "ro")})
	}
	return out, nil
}

// Presence is where a running container is: its main process (in the
// host's PID namespace, for entering its namespaces) and its address on
// each network it joined.
type Presence struct {
	PID int
	IPs map[string]string // network name → IPv4 address
}

// Presence inspects where a running container is.
func (c *Client) Presence(ctx context.Context, id string) (Presence, error) {
	res, err := c.api.ContainerInspect(ctx, id, client.ContainerInspectOptions{})
	if err != nil {
		return Presence{}, fmt.Errorf("inspect container %q: %w", id, notFound(id, err))
	}
	info := res.Container
	p := Presence{IPs: map[string]string{}}
	if info.State != nil {
		p.PID = info.State.Pid
	}
	if info.NetworkSettings != nil {
		for name, ep := range info.NetworkSettings.Networks {
			if ep != nil && ep.IPAddress.IsValid() {
				p.IPs[name] = ep.IPAddress.String()
			}
		}
	}
	return p, nil
}

// LogTail is the last lines of a container's output, stdout and stderr
// interleaved as far as the engine keeps them.
func (c *Client) LogTail(ctx context.Context, id string, lines int) (string, error) {
	rc, err := c.api.ContainerLogs(ctx, id, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Tail: fmt.Sprint(lines)})
	if err != nil {
		return "", fmt.Errorf("logs of container %q: %w", id, notFound(id, err))
	}
	defer rc.Close()
	raw, err := io.ReadAll(io.LimitReader(rc, 1<<20))
	if err != nil {
		return "", fmt.Errorf("logs of container %q: %w", id, err)
	}
	var out bytes.Buffer
	if _, err := stdcopy.StdCopy(&out, &out, bytes.NewReader(raw)); err != nil {
		return string(raw), nil // a TTY container: its log is not multiplexed
	}
	return out.String(), nil
}

// SpecLabels are the labels a recorded container had.
func SpecLabels(spec Spec) (map[string]string, error) {
	var cfg struct{ Labels map[string]string }
	if err := json.Unmarshal(spec.Config, &cfg); err != nil {
		return nil, fmt.Errorf("container %s: decode config: %w", spec.Name, err)
	}
	return cfg.Labels, nil
}
