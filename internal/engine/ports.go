package engine

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

// PortPolicy changes the host ports a recreated container publishes, so
// that a copy can run beside the original that holds them. The zero
// policy keeps every port as recorded.
type PortPolicy struct {
	None  bool // publish no host port at all
	Shift int  // add this to every fixed host port
}

// ParsePortPolicy reads "none" or "shift=N" (1 ≤ N ≤ 65534); "" is the
// zero policy.
func ParsePortPolicy(s string) (PortPolicy, error) {
	switch {
	case s == "":
		return PortPolicy{}, nil
	case s == "none":
		return PortPolicy{None: true}, nil
	case strings.HasPrefix(s, "shift="):
		n, err := strconv.Atoi(strings.TrimPrefix(s, "shift="))
		if err != nil || n < 1 || n > 65534 {
			return PortPolicy{}, fmt.Errorf("ports %q: shift takes a whole number from 1 to 65534, as in shift=1000", s)
		}
		return PortPolicy{Shift: n}, nil
	}
	return PortPolicy{}, fmt.Errorf("ports %q: give none (publish no host port) or shift=N (add N to every host port)", s)
}

// String is the policy as ParsePortPolicy reads it.
func (p PortPolicy) String() string {
	switch {
	case p.None:
		return "none"
	case p.Shift != 0:
		return fmt.Sprintf("shift=%d", p.Shift)
	}
	return ""
}

// IsZero reports whether the policy keeps every port.
func (p PortPolicy) IsZero() bool { return !p.None && p.Shift == 0 }

// HostPort maps one binding's host port: a port or a range "LOW-HIGH".
// An empty one (the engine picks a free port) stays empty; a shifted port
// past 65535 is an error naming it.
func (p PortPolicy) HostPort(hp string) (string, error) {
	if hp == "" || p.Shift == 0 {
		return hp, nil
	}
	ends := strings.SplitN(hp, "-", 2) // a port, or a range's two ends
	out := make([]string, 0, len(ends))
	for _, s := range ends {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return "", fmt.Errorf("host port %q is not a port or range of ports", hp)
		}
		if n+p.Shift > 65535 {
			return "", fmt.Errorf("host port %d shifted by %d is %d, past 65535: choose a smaller shift", n, p.Shift, n+p.Shift)
		}
		out = append(out, strconv.Itoa(n+p.Shift))
	}
	return strings.Join(out, "-"), nil
}

// apply changes hc's published ports as the policy says.
func (p PortPolicy) apply(hc *container.HostConfig) error {
	if p.None {
		hc.PortBindings, hc.PublishAllPorts = nil, false
		return nil
	}
	if p.Shift == 0 {
		return nil
	}
	out := make(network.PortMap, len(hc.PortBindings))
	for port, binds := range hc.PortBindings {
		nb := make([]network.PortBinding, len(binds))
		for i, b := range binds {
			hp, err := p.HostPort(b.HostPort)
			if err != nil {
				return fmt.Errorf("port %s: %w", port, err)
			}
			nb[i] = b
			nb[i].HostPort = hp
		}
		out[port] = nb
	}
	hc.PortBindings = out
	return nil
}

// PortChanges describes, one line per published container port, what the
// policy does to a recorded host config: "8080→9080/tcp",
// "127.0.0.1:53→1053/udp", "80/tcp: engine-chosen port". Nothing for a
// container that publishes nothing.
func (p PortPolicy) PortChanges(spec Spec) ([]string, error) {
	var hc struct {
		PortBindings    map[string][]struct{ HostIP, HostPort string }
		PublishAllPorts bool
	}
	if err := json.Unmarshal(spec.HostConfig, &hc); err != nil {
		return nil, fmt.Errorf("read host configuration of %s: %w", spec.Name, err)
	}
	var out []string
	for port, binds := range hc.PortBindings {
		proto := "tcp"
		if _, pr, ok := strings.Cut(port, "/"); ok {
			proto = pr
		}
		for _, b := range binds {
			from := b.HostPort
			if b.HostIP != "" {
				from = b.HostIP + ":" + from
			}
			switch to, err := p.HostPort(b.HostPort); {
			case err != nil:
				return nil, fmt.Errorf("container %s: %w", spec.Name, err)
			case b.HostPort == "":
				out = append(out, fmt.Sprintf("%s: engine-chosen port", port))
			default:
				out = append(out, fmt.Sprintf("%s→%s/%s", from, to, proto))
			}
		}
	}
	if hc.PublishAllPorts {
		out = append(out, "all exposed ports: engine-chosen")
	}
	sort.Strings(out)
	return out, nil
}
