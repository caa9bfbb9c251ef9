package engine

import (
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client/pkg/versions"
)

type laterNetwork struct {
	name     string
	settings *network.EndpointSettings
}

// BuiltinNetwork reports whether name is a network the engine provides
// (bridge, host, none, the default mode) or another container's namespace:
// nothing a restore creates, and nothing a unit owns.
func BuiltinNetwork(name string) bool {
	switch name {
	case "", network.NetworkDefault, network.NetworkBridge, network.NetworkHost, network.NetworkNone:
		return true
	}
	return strings.HasPrefix(name, "container:")
}

// planNetworks renames the network mode and splits the endpoints into the
// one joined at create time (API 1.41 accepts only one there: the network
// mode's) and the ones connected after, in name order.
func planNetworks(spec Spec, name string, hc *container.HostConfig, rename func(kind, old string) string) (primary string, netcfg *network.NetworkingConfig, later []laterNetwork, err error) {
	mode := hc.NetworkMode
	switch {
	case mode.IsContainer():
		hc.NetworkMode = container.NetworkMode("container:" + rename("container", mode.ConnectedContainer()))
		return "", nil, nil, nil // shares another container's namespace: no endpoints of its own
	case mode.IsHost() || mode.IsNone():
		return "", nil, nil, nil
	case !BuiltinNetwork(string(mode)):
		hc.NetworkMode = container.NetworkMode(rename("network", string(mode)))
	}
	netcfg = &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{}}
	names := slices.Sorted(maps.Keys(spec.Networks))
	for _, old := range names {
		ep := spec.Networks[old]
		if old == network.NetworkHost || old == network.NetworkNone {
			continue
		}
		newName := old
		if !BuiltinNetwork(old) {
			newName = rename("network", old)
		}
		settings, err := endpointSettings(ep, spec.Name, name, rename)
		if err != nil {
			return "", nil, nil, fmt.Errorf("network %q: %w", old, err)
		}
		isPrimary := newName == string(hc.NetworkMode) ||
			(old == network.NetworkBridge && (mode.IsDefault() || mode.IsBridge()))
		switch {
		case old == network.NetworkBridge && (!isPrimary || trivialEndpoint(settings)):
			// The default bridge is joined through the network mode only, and
			// naming it without need fails on engines run with --bridge=none.
		case isPrimary && primary == "":
			primary = newName
			netcfg.EndpointsConfig[newName] = settings
		default:
			later = append(later, laterNetwork{newName, settings})
		}
	}
	sort.Slice(later, func(i, j int) bool { return later[i].name < later[j].name })
	return primary, netcfg, later, nil
}

func trivialEndpoint(s *network.EndpointSettings) bool {
	return s.IPAMConfig == nil && len(s.Links) == 0 && len(s.Aliases) == 0 && len(s.DriverOpts) == 0
}

func endpointSettings(ep EndpointSpec, oldName, newName string, rename func(kind, old string) string) (*network.EndpointSettings, error) {
	s := &network.EndpointSettings{Links: renameLinks(ep.Links, rename), DriverOpts: maps.Clone(ep.DriverOpts)}
	for _, a := range ep.Aliases {
		// Compose names the container among its aliases; a copy answers
		// to its own name.
		if a == oldName {
			a = newName
		}
		s.Aliases = append(s.Aliases, a)
	}
	if ep.IPv4Address != "" || ep.IPv6Address != "" || len(ep.LinkLocalIPs) > 0 {
		ipam := &network.EndpointIPAMConfig{}
		var err error
		if ipam.IPv4Address, err = parseAddr(ep.IPv4Address); err != nil {
			return nil, err
		}
		if ipam.IPv6Address, err = parseAddr(ep.IPv6Address); err != nil {
			return nil, err
		}
		for _, l := range ep.LinkLocalIPs {
			a, err := parseAddr(l)
			if err != nil {
				return nil, err
			}
			ipam.LinkLocalIPs = append(ipam.LinkLocalIPs, a)
		}
		s.IPAMConfig = ipam
	}
	return s, nil
}

// parseAddr reads a recorded address; "" is none.
func parseAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("recorded address %q: %w", s, err)
	}
	return a, nil
}

// placeMacAddress puts the MAC address recorded in the container's
// config where this engine reads it. From API 1.44 that is the endpoint
// the container is created on. Before, engines read only
// Config.MacAddress, a field the moby API types no longer have, so the
// address cannot be sent: the container gets a new one, with a warning.
func (c *Client) placeMacAddress(spec Spec, name, primary string, netcfg *network.NetworkingConfig) error {
	var doc struct{ MacAddress string }
	if err := json.Unmarshal(spec.Config, &doc); err != nil {
		return fmt.Errorf("decode config: %w", err)
	}
	if doc.MacAddress == "" {
		return nil
	}
	mac, err := net.ParseMAC(doc.MacAddress)
	if err != nil {
		return fmt.Errorf("recorded mac address %q: %w", doc.MacAddress, err)
	}
	if versions.LessThan(c.api.ClientVersion(), "1.44") {
		c.log.Warn("engine API before 1.44 cannot be given a container's MAC address; it gets a new one",
			"container", name, "mac", doc.MacAddress, "api", c.api.ClientVersion())
		return nil
	}
	if primary != "" {
		netcfg.EndpointsConfig[primary].MacAddress = network.HardwareAddr(mac)
	}
	return nil
}
