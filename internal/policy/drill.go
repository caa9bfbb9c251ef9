package policy

import (
	"fmt"
	"strconv"
	"strings"
)

// Label keys of restore drills, per container.
const (
	// LabelDrillProbe is a command run in the container (through sh -c)
	// once the drill's sandbox runs: exit status 0 passes.
	LabelDrillProbe = "lifeboat.drill.probe"
	// LabelDrillHTTP is PORT/PATH: an HTTP GET of the container's PATH on
	// PORT from inside the sandbox network, passing on 2xx and 3xx.
	LabelDrillHTTP = "lifeboat.drill.http"
)

// Probe is one check a drill runs against a container of its sandbox.
type Probe struct {
	// Cmd is set for a command probe, run through sh -c.
	Cmd string `json:"cmd,omitempty"`
	// Port and Path are set for an HTTP probe.
	Port int    `json:"port,omitempty"`
	Path string `json:"path,omitempty"`
}

// Name is how a drill's results name the probe.
func (p Probe) Name() string {
	if p.Cmd != "" {
		return "probe"
	}
	return fmt.Sprintf("http %d%s", p.Port, p.Path)
}

// DrillProbes reads the probes of one container from its labels.
func DrillProbes(labels map[string]string) ([]Probe, error) {
	var out []Probe
	if v, ok := labels[LabelDrillProbe]; ok {
		v = strings.TrimSpace(v)
		if v == "" {
			return nil, fmt.Errorf("label %s is empty: give the command to run, say %s=\"pg_isready\"", LabelDrillProbe, LabelDrillProbe)
		}
		out = append(out, Probe{Cmd: v})
	}
	if v, ok := labels[LabelDrillHTTP]; ok {
		p, err := parseHTTPProbe(strings.TrimSpace(v))
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// parseHTTPProbe reads PORT/PATH ("8080/", "80/health", or a bare port
// for the path /).
func parseHTTPProbe(v string) (Probe, error) {
	port, path, hasPath := strings.Cut(v, "/")
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return Probe{}, fmt.Errorf("label %s=%q: want PORT/PATH with a port from 1 to 65535, say %s=8080/health", LabelDrillHTTP, v, LabelDrillHTTP)
	}
	if !hasPath {
		path = ""
	}
	if strings.ContainsAny(path, " \t\r\n#") {
		return Probe{}, fmt.Errorf("label %s=%q: the path may not hold spaces or #", LabelDrillHTTP, v)
	}
	return Probe{Port: n, Path: "/" + path}, nil
}
