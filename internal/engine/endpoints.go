package engine

import (
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"
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
func planNetworks(spec Spec, name string, hc *container.HostConfig, rename func(kind, old string) string) (primary string, netcfg *network.NetworkingConfig, later []laterNetwork) {
	mode := hc.NetworkMode
	switch {
	case mode.IsContainer():
		hc.NetworkMode = container.NetworkMode("container:" + rename("container", mode.ConnectedContainer()))
		return "", nil, nil // shares another container's namespace: no endpoints of its own
	case mode.IsHost() || mode.IsNone():
		return "", nil, nil
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
		settings := endpointSettings(ep, spec.Name, name, rename)
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
	return primary, netcfg, later
}

func trivialEndpoint(s *network.EndpointSettings) bool {
	return s.IPAMConfig == nil && len(s.Links) == 0 && len(s.Aliases) == 0 && len(s.DriverOpts) == 0
}

func endpointSettings(ep EndpointSpec, oldName, newName string, rename func(kind, old string) string) *network.EndpointSettings {
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
		s.IPAMConfig = &network.EndpointIPAMConfig{IPv4Address: ep.IPv4Address, IPv6Address: ep.IPv6Address, LinkLocalIPs: ep.LinkLocalIPs}
	}
	return s
}
