package engine

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
)

func TestParsePortPolicy(t *testing.T) {
	for in, want := range map[string]PortPolicy{"": {}, "none": {None: true}, "shift=1000": {Shift: 1000}, "shift=1": {Shift: 1}} {
		got, err := ParsePortPolicy(in)
		if err != nil || got != want || got.String() != in {
			t.Errorf("ParsePortPolicy(%q) = %+v (%q), %v; want %+v", in, got, got.String(), err, want)
		}
	}
	for _, in := range []string{"shift=0", "shift=-5", "shift=", "shift=x", "shift=65535", "None", "keep", "shift 10"} {
		if _, err := ParsePortPolicy(in); err == nil {
			t.Errorf("ParsePortPolicy(%q) accepted", in)
		}
	}
}

func TestPortPolicyHostPort(t *testing.T) {
	p := PortPolicy{Shift: 1000}
	for in, want := range map[string]string{"8080": "9080", "": "", "8000-8010": "9000-9010", "64535": "65535"} {
		if got, err := p.HostPort(in); err != nil || got != want {
			t.Errorf("HostPort(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"64536", "64000-64600", "http"} {
		if _, err := p.HostPort(in); err == nil {
			t.Errorf("HostPort(%q) accepted", in)
		}
	}
	if _, err := p.HostPort("65000"); err == nil || !strings.Contains(err.Error(), "host port 65000") {
		t.Errorf("overflow error %v does not name the port", err)
	}
	if got, _ := (PortPolicy{}).HostPort("8080"); got != "8080" {
		t.Errorf("the zero policy changed 8080 to %s", got)
	}
}

func testHostConfig() container.HostConfig {
	return container.HostConfig{
		PublishAllPorts: true,
		PortBindings: network.PortMap{
			network.MustParsePort("80/tcp"):   {{HostPort: "8080"}, {HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: "8081"}},
			network.MustParsePort("53/udp"):   {{HostPort: "5300-5301"}},
			network.MustParsePort("9000/tcp"): {{HostPort: ""}},
		},
	}
}

func TestPortPolicyApply(t *testing.T) {
	hc := testHostConfig()
	if err := (PortPolicy{Shift: 1000}).apply(&hc); err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for port, binds := range hc.PortBindings {
		for _, b := range binds {
			ip := ""
			if b.HostIP.IsValid() {
				ip = b.HostIP.String()
			}
			got[port.String()] = append(got[port.String()], ip+":"+b.HostPort)
		}
	}
	want := map[string][]string{"80/tcp": {":9080", "127.0.0.1:9081"}, "53/udp": {":6300-6301"}, "9000/tcp": {":"}}
	if !reflect.DeepEqual(got, want) || !hc.PublishAllPorts {
		t.Errorf("shifted bindings %v (publish all %v), want %v and publish all kept", got, hc.PublishAllPorts, want)
	}

	hc = testHostConfig()
	if err := (PortPolicy{None: true}).apply(&hc); err != nil {
		t.Fatal(err)
	}
	if hc.PortBindings != nil || hc.PublishAllPorts {
		t.Errorf("none left bindings %v, publish all %v", hc.PortBindings, hc.PublishAllPorts)
	}

	hc = testHostConfig()
	if err := (PortPolicy{Shift: 60000}).apply(&hc); err == nil || !strings.Contains(err.Error(), "past 65535") {
		t.Errorf("an overflowing shift gave %v", err)
	}
}

func TestPortChanges(t *testing.T) {
	b, err := json.Marshal(testHostConfig())
	if err != nil {
		t.Fatal(err)
	}
	got, err := PortPolicy{Shift: 1000}.PortChanges(Spec{Name: "web", HostConfig: b})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"127.0.0.1:8081→9081/tcp", "5300-5301→6300-6301/udp", "8080→9080/tcp", "9000/tcp: engine-chosen port", "all exposed ports: engine-chosen"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PortChanges = %q, want %q", got, want)
	}
	if _, err := (PortPolicy{Shift: 60000}).PortChanges(Spec{Name: "web", HostConfig: b}); err == nil || !strings.Contains(err.Error(), "container web: host port") {
		t.Errorf("overflow: %v", err)
	}
}
