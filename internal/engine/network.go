package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/moby/moby/client/pkg/versions"
)

// NetworkSpec is what recreating a network needs.
type NetworkSpec struct {
	Name       string            `json:"name"`
	Driver     string            `json:"driver"`
	Internal   bool              `json:"internal,omitempty"`
	Attachable bool              `json:"attachable,omitempty"`
	EnableIPv6 bool              `json:"enable_ipv6,omitempty"`
	Labels     map[string]string `json:"labels,omitempty"`
	Options    map[string]string `json:"options,omitempty"`
	// IPAM is the engine's own JSON: driver, options and the address pools.
	IPAM json.RawMessage `json:"ipam,omitempty"`
}

// Network inspects a network by name (or ID).
func (c *Client) Network(ctx context.Context, name string) (NetworkSpec, error) {
	res, err := c.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
	n, raw := res.Network, res.Raw
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return NetworkSpec{}, fmt.Errorf("network %q %w: see `docker network ls`", name, ErrNotFound)
		}
		return NetworkSpec{}, fmt.Errorf("inspect network %q: %w", name, err)
	}
	var doc struct{ IPAM json.RawMessage }
	if err := json.Unmarshal(raw, &doc); err != nil {
		return NetworkSpec{}, fmt.Errorf("inspect network %q: decode: %w", name, err)
	}
	return NetworkSpec{
		Name: n.Name, Driver: n.Driver, Internal: n.Internal, Attachable: n.Attachable, EnableIPv6: n.EnableIPv6,
		Labels: n.Labels, Options: n.Options, IPAM: doc.IPAM,
	}, nil
}

// CreateNetwork creates a network like spec under spec.Name; ErrExists when
// one of that name is there. Engines report the address pool they chose
// as if it had been asked for, so a recorded subnet may be one nobody
// chose: when it overlaps a network of this engine (as for a copy beside
// its original), the engine picks another.
func (c *Client) CreateNetwork(ctx context.Context, spec NetworkSpec) error {
	opts := client.NetworkCreateOptions{
		Driver: spec.Driver, Internal: spec.Internal, Attachable: spec.Attachable,
		Labels: spec.Labels, Options: spec.Options,
	}
	if spec.EnableIPv6 {
		opts.EnableIPv6 = &spec.EnableIPv6
	}
	if len(spec.IPAM) > 0 && string(spec.IPAM) != "null" {
		opts.IPAM = &network.IPAM{}
		if err := json.Unmarshal(spec.IPAM, opts.IPAM); err != nil {
			return fmt.Errorf("create network %q: decode ipam: %w", spec.Name, err)
		}
	}
	res, err := c.api.NetworkCreate(ctx, spec.Name, opts)
	if err != nil && opts.IPAM != nil && len(opts.IPAM.Config) > 0 && strings.Contains(err.Error(), "overlaps") {
		c.log.Warn("recorded subnet is taken; the engine picks another", "network", spec.Name, "err", err)
		opts.IPAM = &network.IPAM{Driver: opts.IPAM.Driver, Options: opts.IPAM.Options}
		res, err = c.api.NetworkCreate(ctx, spec.Name, opts)
	}
	if err != nil {
		if cerrdefs.IsConflict(err) || strings.Contains(err.Error(), "already exists") {
			return fmt.Errorf("network %q %w", spec.Name, ErrExists)
		}
		return fmt.Errorf("create network %q: %w", spec.Name, err)
	}
	return c.undoDuplicateNetwork(ctx, spec.Name, res)
}

// undoDuplicateNetwork removes a network just created beside another of
// the same name. Engines before API 1.44 refuse a taken name only when
// asked to (CheckDuplicate), which the moby client no longer sends; they
// create the second network and say so in a warning. The warning names
// the network that was there first, so of two racing creators exactly the
// later one backs out.
func (c *Client) undoDuplicateNetwork(ctx context.Context, name string, res client.NetworkCreateResult) error {
	if !versions.LessThan(c.api.ClientVersion(), "1.44") {
		return nil
	}
	for _, w := range res.Warning {
		if !strings.Contains(w, "already exists") {
			continue
		}
		// A fresh context: the network must not stay behind because the
		// caller's context ended.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if _, err := c.api.NetworkRemove(rctx, res.ID, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("network %q %w; removing the duplicate %s the engine made: %v", name, ErrExists, res.ID, err)
		}
		return fmt.Errorf("network %q %w", name, ErrExists)
	}
	return nil
}

// RemoveNetwork removes a network, for undoing one that a failed restore
// created; nil when it is already gone.
func (c *Client) RemoveNetwork(ctx context.Context, name string) error {
	if _, err := c.api.NetworkRemove(ctx, name, client.NetworkRemoveOptions{}); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove network %q: %w", name, err)
	}
	return nil
}
