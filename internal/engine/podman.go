package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/api/types/system"
	"github.com/moby/moby/client"
)

// Podman's Docker-compatible API (`podman system service`) differs from
// dockerd in a few places that a backup or a restore meets; the checks
// here key on what the engine reports, so Docker takes the paths it
// always took.

// upperDirDrivers are the storage drivers whose inspect data names an
// overlay upper dir holding the writable layer in overlayfs's own format
// (whiteouts as 0/0 character devices, opaque directories by xattr):
// Docker's overlay2 and Podman's overlay (containers/storage), so a layer
// saved on one restores into the other.
var upperDirDrivers = map[string]bool{"overlay2": true, "overlay": true}

// isPodman reports whether an engine's version components name Podman
// ("Podman Engine"), as `podman system service` reports itself.
func isPodman(components []system.ComponentVersion) bool {
	for _, comp := range components {
		if strings.HasPrefix(comp.Name, "Podman") {
			return true
		}
	}
	return false
}

// detectPodman asks the engine what it is and sets Info.Podman. Info
// alone cannot tell: Podman fills it as dockerd does, with its own
// version number. An engine that does not answer is taken for dockerd,
// whose paths need no check. Podman's Info.ID is a new random UUID at
// every call, so it is replaced by one derived from what stays. Rootless
// Podman is refused (see docs/podman.md).
func (c *Client) detectPodman(ctx context.Context) error {
	v, err := c.api.ServerVersion(ctx, client.ServerVersionOptions{})
	if err != nil {
		c.log.Debug("engine version unreadable; taken for dockerd", "host", c.host, "err", err)
		return nil
	}
	if c.info.Podman = isPodman(v.Components); !c.info.Podman {
		return nil
	}
	c.info.ID = podmanEngineID(c.info.Hostname, c.info.DataRoot)
	var info struct {
		Host struct{ Security struct{ Rootless bool } }
	}
	if err := c.libpodGet(ctx, "info", &info); err != nil {
		return fmt.Errorf("%w at %s: %v", ErrUnreachable, c.host, err)
	}
	if info.Host.Security.Rootless {
		return fmt.Errorf("engine at %s is rootless Podman, which lifeboat does not support: use the rootful service (podman.socket as root)", c.host)
	}
	return nil
}

// podmanEngineID names a Podman engine by its host name and storage
// root, the only stable facts its API gives: two Podman hosts with the
// same name and root share it (Podman has no engine ID to tell them
// apart).
func podmanEngineID(hostname, root string) string {
	sum := sha256.Sum256([]byte(hostname + "\x00" + root))
	return "podman-" + hex.EncodeToString(sum[:8])
}

// podmanNetworks makes a Podman container's networks read as Docker's.
// Podman names its default network "podman" in inspect data (and
// "bridge" in listings), and reports the network mode "bridge" even for
// a container created on another network only. Recorded as they are, a
// restore would create a network "podman" (whose subnet Podman's own
// already holds) and would attach a copy to the default network it never
// was on. So the default network is recorded as "bridge", which both
// engines create nothing for, and the mode names the network the
// container was created on.
func (c *Client) podmanNetworks(ctx context.Context, spec *Spec) error {
	def, err := c.api.NetworkInspect(ctx, network.NetworkBridge, client.NetworkInspectOptions{})
	if err != nil {
		return fmt.Errorf("inspect default network: %w", err)
	}
	for name, ep := range spec.Networks {
		if BuiltinNetwork(name) {
			continue
		}
		n, err := c.api.NetworkInspect(ctx, name, client.NetworkInspectOptions{})
		if err != nil {
			return fmt.Errorf("inspect network %q: %w", name, err)
		}
		if n.Network.ID == def.Network.ID {
			// No aliases: neither engine's default network has DNS, and
			// dockerd refuses them there.
			ep.Aliases = nil
			delete(spec.Networks, name)
			spec.Networks[network.NetworkBridge] = ep
		}
	}
	var hc rawObject
	if err := json.Unmarshal(spec.HostConfig, &hc); err != nil {
		return fmt.Errorf("decode host config: %w", err)
	}
	var mode string
	if hc.get("NetworkMode", &mode) != nil {
		return nil
	}
	if m := podmanNetworkMode(mode, slices.Collect(maps.Keys(spec.Networks))); m != mode {
		hc.set("NetworkMode", m)
		if spec.HostConfig, err = json.Marshal(hc); err != nil {
			return fmt.Errorf("encode host config: %w", err)
		}
	}
	return nil
}

// podmanNetworkMode is the network mode a container was created with,
// given the mode Podman reports and the networks it is on: "bridge" (or
// "default") while the container is not on the default network means the
// first of its networks, the one Podman joined it to at create time.
func podmanNetworkMode(mode string, networks []string) string {
	if (mode != network.NetworkBridge && mode != network.NetworkDefault) || len(networks) == 0 ||
		slices.Contains(networks, network.NetworkBridge) {
		return mode
	}
	return slices.Min(networks)
}

// podmanAddsEnv reports the variables Podman writes into every
// container's recorded environment by itself: containers.conf's default
// TERM, its container marker, HOME from the image's passwd and HOSTNAME.
// It adds them again on create, and Docker should not get them. What the
// image itself sets stays; a HOME or TERM=xterm the user set by hand
// cannot be told apart and is dropped too (an engine sets HOME anyway).
func podmanAddsEnv(e, hostname string, imageEnv []string) bool {
	if slices.Contains(imageEnv, e) {
		return false
	}
	name, _, _ := strings.Cut(e, "=")
	switch {
	case e == "container=podman", e == "TERM=xterm", name == "HOME":
		return true
	case name == "HOSTNAME":
		return e == "HOSTNAME="+hostname
	}
	return false
}

// podmanBindOptions are the options Podman spells out in every volume
// bind; it adds them again on create, and dockerd rejects them (rprivate,
// the default propagation of both, on a named volume).
var podmanBindOptions = map[string]bool{"rbind": true, "nosuid": true, "nodev": true, "rprivate": true}

// podmanPortable rewrites a Podman container's inspect data into what
// both engines accept on create: Docker's ulimit names ("nofile", not
// "RLIMIT_NOFILE", which Podman itself rejects on create), no runtime
// "oci" and no "private" PID or UTS mode (Podman's words for the
// default, unknown to dockerd), binds without Podman's implied options,
// and no environment Podman made up (see podmanAddsEnv). hostname is the
// container's, imageEnv the image's own environment.
func podmanPortable(cfg, hc rawObject, hostname string, imageEnv []string) {
	var ulimits []struct {
		Name       string
		Hard, Soft int64
	}
	if hc.get("Ulimits", &ulimits) == nil && len(ulimits) > 0 {
		for i, u := range ulimits {
			ulimits[i].Name = strings.ToLower(strings.TrimPrefix(u.Name, "RLIMIT_"))
		}
		hc.set("Ulimits", ulimits)
	}
	for key, dflt := range map[string]string{"Runtime": "oci", "PidMode": "private", "UTSMode": "private"} {
		var v string
		if hc.get(key, &v) == nil && v == dflt {
			hc.set(key, "")
		}
	}
	var binds []string
	if hc.get("Binds", &binds) == nil && len(binds) > 0 {
		for i, b := range binds {
			binds[i] = dockerBind(b)
		}
		hc.set("Binds", binds)
	}
	var env []string
	if cfg.get("Env", &env) == nil && len(env) > 0 {
		env = slices.DeleteFunc(env, func(e string) bool { return podmanAddsEnv(e, hostname, imageEnv) })
		cfg.set("Env", env)
	}
}

// dockerBind drops Podman's implied options from a bind
// ("vol:/data:rw,rprivate,nosuid,nodev,rbind" becomes "vol:/data:rw").
func dockerBind(b string) string {
	parts := strings.Split(b, ":")
	if len(parts) < 3 {
		return b
	}
	opts := slices.DeleteFunc(strings.Split(parts[len(parts)-1], ","), func(o string) bool { return podmanBindOptions[o] })
	if len(opts) == 0 {
		return strings.Join(parts[:len(parts)-1], ":")
	}
	parts[len(parts)-1] = strings.Join(opts, ",")
	return strings.Join(parts, ":")
}

// noHealthcheck reports a container without a healthcheck: dockerd
// reports no health or "none", Podman a health with an empty status.
func noHealthcheck(h *container.Health) bool {
	return h == nil || h.Status == container.NoHealthcheck || h.Status == ""
}

// podmanSpec rewrites a Podman container's recorded networks, and a pod
// member's namespaces, into what both engines create.
func (c *Client) podmanSpec(ctx context.Context, id string, spec *Spec) error {
	pod, err := c.podOf(ctx, id)
	if err != nil {
		return err
	}
	if pod.Pod != "" {
		if err := c.leavePod(ctx, spec, pod.Pod); err != nil {
			return err
		}
	}
	return c.podmanNetworks(ctx, spec)
}

// commitConfig is the body of a commit request: none for dockerd, which
// keeps the container's configuration, and an empty one for Podman,
// which fails to decode a request without a body ("Decode(): EOF") and
// keeps the container's configuration too.
func (c *Client) commitConfig() *container.Config {
	if c.info.Podman {
		return &container.Config{}
	}
	return nil
}

// podmanEvents adds to an event filter what Podman says instead of
// dockerd: a container or volume removed is "remove", not "destroy".
func (c *Client) podmanEvents(f client.Filters) {
	if c.info.Podman {
		f.Add("event", string(events.ActionRemove))
	}
}
