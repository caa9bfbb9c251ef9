package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/client"
)

// CreateOptions tailors a recreation.
type CreateOptions struct {
	// Name is the container to create; "" means the spec's name. It differs
	// from it for copies (restore --as).
	Name string
	// Rename maps names for copies: kind "volume" (named volumes mounted),
	// "network" (user-defined networks; bridge, host, none and default are
	// never passed), "project" (the Compose project label's value) and
	// "container" (other containers referred to: volumes-from, links,
	// container: namespace modes). Nil keeps every name.
	Rename func(kind, old string) string
	// Sandbox, when set, isolates the container for a restore drill (see
	// Sandbox); nil creates it as recorded.
	Sandbox *Sandbox
	// FreshAnonymous leaves the spec's anonymous volumes to the engine,
	// which makes new ones as it did for the original: anonymous again,
	// so that `docker rm -v` and `docker compose down -v` remove them. The
	// caller fills them. Otherwise they are mounted by their recorded
	// names (renamed), as named volumes.
	FreshAnonymous bool
	// Ports changes the host ports published (a copy's, beside the
	// original that holds them); the zero policy keeps them.
	Ports PortPolicy
}

// Create creates, without starting, a container from spec: the same config
// and host config, named volumes and networks mapped through opts.Rename,
// the first network joined at create time and the others connected after
// with their aliases. The image must be on this engine (by reference or ID).
// It returns the new container's ID and its writable layer directory (the
// overlay2 upper dir, "" with other drivers) so that the caller can write a
// saved layer into it before starting. On failure nothing is left behind.
func (c *Client) Create(ctx context.Context, spec Spec, opts CreateOptions) (id, upperDir string, err error) {
	name := opts.Name
	if name == "" {
		name = spec.Name
	}
	rename := opts.Rename
	if rename == nil {
		rename = func(_, old string) string { return old }
	}
	cfg, hc, err := decodeSpec(spec)
	if err != nil {
		return "", "", fmt.Errorf("create container %q: %w", name, err)
	}
	if cfg.Image, err = c.resolveImage(ctx, spec.Image); err != nil {
		return "", "", fmt.Errorf("create container %q: %w", name, err)
	}
	if p, ok := cfg.Labels[LabelProject]; ok {
		cfg.Labels = maps.Clone(cfg.Labels)
		cfg.Labels[LabelProject] = rename("project", p)
	}
	renameMounts(&hc, rename)
	if !opts.FreshAnonymous {
		mountAnonymous(&hc, spec.AnonymousVolumes, rename)
	}
	hc.ContainerIDFile = ""
	if err := opts.Ports.apply(&hc); err != nil {
		return "", "", fmt.Errorf("create container %q: %w", name, err)
	}
	if opts.Sandbox != nil {
		if err := opts.Sandbox.apply(&cfg, &hc, &spec); err != nil {
			return "", "", fmt.Errorf("create container %q in a sandbox: %w", name, err)
		}
	}

	primary, netcfg, later, err := planNetworks(spec, name, &hc, rename)
	if err != nil {
		return "", "", fmt.Errorf("create container %q: %w", name, err)
	}
	if opts.Sandbox == nil {
		// A sandbox's copy never takes the original's MAC address.
		if err := c.placeMacAddress(spec, name, primary, netcfg); err != nil {
			return "", "", fmt.Errorf("create container %q: %w", name, err)
		}
	}

	if err := c.networksExist(ctx, hc.NetworkMode, later); err != nil {
		return "", "", fmt.Errorf("create container %q: %w", name, err)
	}

	res, err := c.api.ContainerCreate(ctx, client.ContainerCreateOptions{Config: &cfg, HostConfig: &hc, NetworkingConfig: netcfg, Name: name})
	if err != nil {
		if cerrdefs.IsConflict(err) {
			return "", "", fmt.Errorf("create container %q: %w: %v", name, ErrExists, err)
		}
		return "", "", fmt.Errorf("create container %q: %w", name, err)
	}
	undo := func(cause error) (string, string, error) {
		// A fresh context: the caller's may be what failed.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, rerr := c.api.ContainerRemove(rctx, res.ID, client.ContainerRemoveOptions{Force: true, RemoveVolumes: true}); rerr != nil && !cerrdefs.IsNotFound(rerr) {
			c.log.Warn("remove half-created container", "container", name, "err", rerr)
		}
		return "", "", cause
	}
	for _, w := range res.Warnings {
		c.log.Warn("engine warning creating container", "container", name, "warning", w)
	}
	for _, net := range later {
		if _, err := c.api.NetworkConnect(ctx, net.name, client.NetworkConnectOptions{Container: res.ID, EndpointConfig: net.settings}); err != nil {
			return undo(fmt.Errorf("create container %q: connect network %q: %w", name, net.name, err))
		}
	}
	info, err := c.api.ContainerInspect(ctx, res.ID, client.ContainerInspectOptions{})
	if err != nil {
		return undo(fmt.Errorf("create container %q: inspect: %w", name, err))
	}
	return res.ID, writableLayer(info.Container), nil
}

// decodeSpec is a recorded container's configuration, for Create to
// tailor.
func decodeSpec(spec Spec) (container.Config, container.HostConfig, error) {
	var cfg container.Config
	var hc container.HostConfig
	if err := json.Unmarshal(spec.Config, &cfg); err != nil {
		return cfg, hc, fmt.Errorf("decode config: %w", err)
	}
	if err := json.Unmarshal(spec.HostConfig, &hc); err != nil {
		return cfg, hc, fmt.Errorf("decode host config: %w", err)
	}
	return cfg, hc, nil
}

// networksExist checks the networks a container is to join: Engine 20.10
// accepts a missing one at create and connect time for a container not
// yet started, and fails only at start.
func (c *Client) networksExist(ctx context.Context, mode container.NetworkMode, later []laterNetwork) error {
	var wanted []string
	if mode.IsUserDefined() {
		wanted = append(wanted, string(mode))
	}
	for _, l := range later {
		wanted = append(wanted, l.name)
	}
	for _, n := range wanted {
		if _, err := c.api.NetworkInspect(ctx, n, client.NetworkInspectOptions{}); err != nil {
			if cerrdefs.IsNotFound(err) {
				return fmt.Errorf("network %q %w on this engine: create it first", n, ErrNotFound)
			}
			return fmt.Errorf("inspect network %q: %w", n, err)
		}
	}
	return nil
}

// resolveImage picks what Config.Image becomes: the recorded reference
// while it still names the recorded image, else the image ID, else the
// reference (the same name, but another build), else a repo digest.
func (c *Client) resolveImage(ctx context.Context, ref ImageRef) (string, error) {
	refID := ""
	if ref.Ref != "" {
		img, err := c.Image(ctx, ref.Ref)
		switch {
		case err == nil:
			refID = img.ID
			if ref.ID == "" || img.ID == ref.ID {
				return ref.Ref, nil
			}
		case !errors.Is(err, ErrNotFound):
			return "", err
		}
	}
	if ref.ID != "" {
		ok, err := c.HasImage(ctx, ref.ID)
		if err != nil {
			return "", err
		}
		if ok {
			return ref.ID, nil
		}
	}
	if refID != "" {
		// Engines with the containerd image store give other IDs to the
		// same image, so the reference is the best remaining match.
		c.log.Warn("image reference names another image than recorded", "ref", ref.Ref, "recorded", ref.ID, "now", refID)
		return ref.Ref, nil
	}
	for _, d := range ref.RepoDigests {
		if ok, err := c.HasImage(ctx, d); err != nil {
			return "", err
		} else if ok {
			return d, nil
		}
	}
	return "", &missingImageError{ref}
}

type missingImageError struct{ ref ImageRef }

func (e *missingImageError) Error() string {
	return fmt.Sprintf("image %s is not on this engine: load or pull it first", e.ref)
}

func (e *missingImageError) Unwrap() error { return ErrNotFound }

// mountAnonymous mounts anonymous volumes by name: a Mounts entry that
// asked for one without a source gets it, any other is added.
func mountAnonymous(hc *container.HostConfig, vols []AnonymousVolume, rename func(kind, old string) string) {
	for _, v := range vols {
		m := mount.Mount{Type: mount.TypeVolume, Source: rename("volume", v.Name), Target: v.Destination, ReadOnly: !v.RW}
		i := slices.IndexFunc(hc.Mounts, func(x mount.Mount) bool {
			return x.Type == mount.TypeVolume && x.Source == "" && x.Target == v.Destination
		})
		if i >= 0 {
			hc.Mounts[i].Source = m.Source
			continue
		}
		hc.Mounts = append(hc.Mounts, m)
	}
}

// anonymousVolumes are the volume mounts that neither Binds nor Mounts of
// the host config named: the image's VOLUME lines, and Mounts entries
// without a source (Compose's anonymous volumes).
func anonymousVolumes(mounts []container.MountPoint, hc *container.HostConfig) []AnonymousVolume {
	if len(hc.VolumesFrom) > 0 {
		// Those volumes arrive with --volumes-from again; which mount came
		// from where is not in the inspect data.
		return nil
	}
	asked := map[string]bool{}
	for _, b := range hc.Binds {
		parts := strings.Split(b, ":")
		if len(parts) >= 2 {
			asked[parts[1]] = true
		}
	}
	for _, m := range hc.Mounts {
		if m.Type != mount.TypeVolume || m.Source != "" {
			asked[m.Target] = true
		}
	}
	var out []AnonymousVolume
	for _, m := range mounts {
		if m.Type == mount.TypeVolume && m.Name != "" && !asked[m.Destination] {
			out = append(out, AnonymousVolume{Name: m.Name, Destination: m.Destination, RW: m.RW})
		}
	}
	return out
}

// renameMounts maps named volumes and referenced containers for a copy.
func renameMounts(hc *container.HostConfig, rename func(kind, old string) string) {
	for i, b := range hc.Binds {
		src, rest, ok := strings.Cut(b, ":")
		if ok && src != "" && !strings.HasPrefix(src, "/") {
			hc.Binds[i] = rename("volume", src) + ":" + rest
		}
	}
	for i, m := range hc.Mounts {
		if m.Type == mount.TypeVolume && m.Source != "" {
			hc.Mounts[i].Source = rename("volume", m.Source)
		}
	}
	for i, f := range hc.VolumesFrom {
		ref, mode, hasMode := strings.Cut(f, ":")
		hc.VolumesFrom[i] = rename("container", ref)
		if hasMode {
			hc.VolumesFrom[i] += ":" + mode
		}
	}
	hc.Links = renameLinks(hc.Links, rename)
	if hc.IpcMode.IsContainer() {
		hc.IpcMode = container.IpcMode("container:" + rename("container", hc.IpcMode.Container()))
	}
	if hc.PidMode.IsContainer() {
		hc.PidMode = container.PidMode("container:" + rename("container", hc.PidMode.Container()))
	}
}

// renameLinks maps the targets of "container:alias" links.
func renameLinks(links []string, rename func(kind, old string) string) []string {
	if links == nil {
		return nil
	}
	out := make([]string, len(links))
	for i, l := range links {
		target, alias, ok := strings.Cut(l, ":")
		out[i] = rename("container", target)
		if ok {
			out[i] += ":" + alias
		}
	}
	return out
}
