package engine

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/mount"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
)

// TestContainers finds a Compose-style labelled set beside a standalone
// container, stopped ones included.
func TestContainers(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	proj := strings.TrimSuffix(p, "-")
	web, db, solo := p+"web-1", p+"db-1", p+"solo"
	removeAfter(t, d, "container", web, db, solo)
	removeAfter(t, d, "volume", p+"dbdata")
	bind := t.TempDir()
	if err := os.WriteFile(filepath.Join(bind, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	d.Docker(t, "run", "-d", "--name", db, "--label", LabelProject+"="+proj, "--label", LabelService+"=db",
		"-v", p+"dbdata:/var/lib/db", "--health-cmd", "true", "--health-interval", "200ms", busybox, "sleep", "600")
	d.Docker(t, "create", "--name", web, "--label", LabelProject+"="+proj, "--label", LabelService+"=web",
		"--label", LabelDependsOn+"=db:service_healthy:false,cache:service_started:true",
		"-v", bind+":/srv:ro", "--tmpfs", "/run:ro,size=1m", "--mount", "type=tmpfs,target=/cache", busybox, "true")
	d.Docker(t, "run", "-d", "--name", solo, busybox, "sleep", "600")
	if err := c.WaitHealthy(ctx, db, 30e9); err != nil {
		t.Fatal(err)
	}

	all, err := c.Containers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Container{}
	for _, ct := range all {
		if strings.HasPrefix(ct.Name, p) {
			got[ct.Name] = ct
		}
	}
	imgID := d.Docker(t, "image", "inspect", "-f", "{{.Id}}", busybox)
	dbMount := d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", p+"dbdata")
	want := map[string]Container{
		db: {Name: db, Image: busybox, ImageID: imgID, State: "running", Project: proj, Service: "db", Health: "healthy",
			Labels: map[string]string{LabelProject: proj, LabelService: "db"},
			Mounts: []Mount{{Type: "volume", Name: p + "dbdata", Source: dbMount, Destination: "/var/lib/db", RW: true}}},
		web: {Name: web, Image: busybox, ImageID: imgID, State: "created", Project: proj, Service: "web", DependsOn: []string{"db", "cache"},
			Labels: map[string]string{LabelProject: proj, LabelService: "web", LabelDependsOn: "db:service_healthy:false,cache:service_started:true"},
			Mounts: []Mount{
				{Type: "tmpfs", Destination: "/cache", RW: true},
				{Type: "tmpfs", Destination: "/run", RW: false},
				{Type: "bind", Source: bind, Destination: "/srv", RW: false, Propagation: "rprivate"},
			}},
		solo: {Name: solo, Image: busybox, ImageID: imgID, State: "running", Mounts: []Mount{}},
	}
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Container{}, "ID"), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Containers (-want +got):\n%s", diff)
	}
	for name, ct := range got {
		if one, err := c.Container(ctx, ct.ID); err != nil || !cmp.Equal(one, ct) {
			t.Errorf("Container(%s) = %+v, %v; Containers said %+v", name, one, err, ct)
		}
		if b, err := json.Marshal(ct); err != nil || !strings.Contains(string(b), `"name":"`+name+`"`) {
			t.Errorf("JSON of %s: %s %v", name, b, err)
		}
	}
	if _, err := c.Container(ctx, p+"nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Container of a missing one: %v", err)
	}
}

func TestParseDependsOn(t *testing.T) {
	for label, want := range map[string][]string{
		"":                         nil,
		"db:service_started:false": {"db"},
		"db:service_healthy:false,cache:service_started:true": {"db", "cache"},
		"db": {"db"}, " db:x , ,cache:y": {"db", "cache"},
	} {
		if got := parseDependsOn(label); !cmp.Equal(got, want) {
			t.Errorf("parseDependsOn(%q) = %q, want %q", label, got, want)
		}
	}
}

func TestCreateLinks(t *testing.T) {
	got := createLinks([]string{"/db:/web/db", "/cache:/web/c", "plain:alias", "/solo"})
	if want := []string{"db:db", "cache:c", "plain:alias", "solo"}; !cmp.Equal(got, want) {
		t.Errorf("createLinks = %q, want %q", got, want)
	}
}

func TestRenameMounts(t *testing.T) {
	hc := container.HostConfig{
		Binds:       []string{"vol:/data", "/host:/h:ro", "other:/o:ro,z"},
		Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: "mvol", Target: "/m"}, {Type: mount.TypeBind, Source: "/b", Target: "/b"}},
		VolumesFrom: []string{"donor:ro", "plain"},
		Links:       []string{"db:alias"},
		IpcMode:     "container:ipcdonor",
		PidMode:     "host",
	}
	renameMounts(&hc, func(kind, old string) string { return kind + "-" + old })
	want := container.HostConfig{
		Binds:       []string{"volume-vol:/data", "/host:/h:ro", "volume-other:/o:ro,z"},
		Mounts:      []mount.Mount{{Type: mount.TypeVolume, Source: "volume-mvol", Target: "/m"}, {Type: mount.TypeBind, Source: "/b", Target: "/b"}},
		VolumesFrom: []string{"container-donor:ro", "container-plain"},
		Links:       []string{"container-db:alias"},
		IpcMode:     "container:container-ipcdonor",
		PidMode:     "host",
	}
	if diff := cmp.Diff(want, hc); diff != "" {
		t.Errorf("renameMounts (-want +got):\n%s", diff)
	}
}

func TestPlanNetworks(t *testing.T) {
	rename := func(kind, old string) string { return kind + "-" + old }
	for _, tc := range []struct {
		name        string
		mode        string
		nets        map[string]EndpointSpec
		wantMode    string
		wantPrimary string
		wantCreate  map[string]*network.EndpointSettings
		wantLater   []string
	}{
		{name: "default bridge, nothing to say", mode: "default",
			nets: map[string]EndpointSpec{"bridge": {}}, wantMode: "default", wantCreate: map[string]*network.EndpointSettings{}},
		{name: "default bridge with a static address", mode: "bridge",
			nets:     map[string]EndpointSpec{"bridge": {IPv4Address: "172.17.0.9"}, "b": {Aliases: []string{"x"}}},
			wantMode: "bridge", wantPrimary: "bridge",
			wantCreate: map[string]*network.EndpointSettings{"bridge": {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: netip.MustParseAddr("172.17.0.9")}}},
			wantLater:  []string{"network-b"}},
		{name: "user networks", mode: "front",
			nets:     map[string]EndpointSpec{"front": {Aliases: []string{"web", "old"}, Links: []string{"db:d"}}, "z": {}, "a": {}},
			wantMode: "network-front", wantPrimary: "network-front",
			wantCreate: map[string]*network.EndpointSettings{"network-front": {Aliases: []string{"web", "new"}, Links: []string{"container-db:d"}}},
			wantLater:  []string{"network-a", "network-z"}},
		{name: "shared namespace", mode: "container:donor", nets: map[string]EndpointSpec{}, wantMode: "container:container-donor"},
		{name: "host", mode: "host", nets: map[string]EndpointSpec{"host": {}}, wantMode: "host"},
		{name: "none", mode: "none", nets: map[string]EndpointSpec{"none": {}}, wantMode: "none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hc := container.HostConfig{NetworkMode: container.NetworkMode(tc.mode)}
			primary, netcfg, later, err := planNetworks(Spec{Name: "old", Networks: tc.nets}, "new", &hc, rename)
			if err != nil {
				t.Fatalf("planNetworks: %v", err)
			}
			if string(hc.NetworkMode) != tc.wantMode || primary != tc.wantPrimary {
				t.Errorf("mode %q primary %q, want %q %q", hc.NetworkMode, primary, tc.wantMode, tc.wantPrimary)
			}
			var create map[string]*network.EndpointSettings
			if netcfg != nil {
				create = netcfg.EndpointsConfig
			}
			if diff := cmp.Diff(tc.wantCreate, create, cmpopts.EquateEmpty(), cmpopts.EquateComparable(netip.Addr{})); diff != "" {
				t.Errorf("create-time endpoints (-want +got):\n%s", diff)
			}
			var names []string
			for _, l := range later {
				names = append(names, l.name)
			}
			if !cmp.Equal(names, tc.wantLater) {
				t.Errorf("connected later %q, want %q", names, tc.wantLater)
			}
		})
	}
}

// TestPlanNetworksBadAddress refuses a recorded address that does not
// parse instead of creating the container without it.
func TestPlanNetworksBadAddress(t *testing.T) {
	hc := container.HostConfig{NetworkMode: "front"}
	spec := Spec{Name: "old", Networks: map[string]EndpointSpec{"front": {IPv4Address: "172.20.0.300"}}}
	_, _, _, err := planNetworks(spec, "new", &hc, func(_, old string) string { return old })
	if err == nil || !strings.Contains(err.Error(), "172.20.0.300") {
		t.Fatalf("planNetworks with a bad address: %v, want an error naming it", err)
	}
}

// TestPlaceMacAddress checks where the recorded MAC address goes for the
// API version the client speaks: the primary endpoint from 1.44, nowhere
// before (the field those engines read is gone from the moby types).
func TestPlaceMacAddress(t *testing.T) {
	const mac = "02:42:ac:11:00:99"
	spec := Spec{Config: json.RawMessage(`{"Image":"x","MacAddress":"` + mac + `"}`)}
	for _, tc := range []struct {
		api, want string
	}{{"1.44", mac}, {"1.41", ""}} {
		api, err := client.New(client.WithAPIVersion(tc.api))
		if err != nil {
			t.Fatal(err)
		}
		c := &Client{api: api, log: slog.New(slog.DiscardHandler)}
		netcfg := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{"front": {}}}
		if err := c.placeMacAddress(spec, "new", "front", netcfg); err != nil {
			t.Fatalf("API %s: %v", tc.api, err)
		}
		if got := netcfg.EndpointsConfig["front"].MacAddress.String(); got != tc.want {
			t.Errorf("API %s: endpoint MAC %q, want %q", tc.api, got, tc.want)
		}
	}
	bad := Spec{Config: json.RawMessage(`{"MacAddress":"not-a-mac"}`)}
	if err := (&Client{}).placeMacAddress(bad, "new", "", nil); err == nil {
		t.Error("a bad recorded MAC address was accepted")
	}
}
