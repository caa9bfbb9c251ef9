package engine

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestInspectCreateCopy captures a container with a rich configuration and
// creates a copy of it under another name, with its volume and networks
// renamed (restore --as), then compares what the engine reports of both.
func TestInspectCreateCopy(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	orig, cp := p+"orig", p+"copy"
	vol, net1, net2 := p+"vol", p+"net1", p+"net2"
	rename := map[string]string{vol: p + "vol-copy", net1: p + "net1-copy", net2: p + "net2-copy", "p1": "p1-copy"}
	removeAfter(t, d, "volume", vol, rename[vol])
	removeAfter(t, d, "network", net1, net2, rename[net1], rename[net2])
	removeAfter(t, d, "container", orig, cp)
	bind := t.TempDir()
	if err := os.WriteFile(filepath.Join(bind, "hello"), []byte("bound\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	d.Docker(t, "volume", "create", vol)
	d.Docker(t, "network", "create", "--label", "lifeboat.test=1", net1)
	d.Docker(t, "network", "create", "--internal", net2)
	d.Docker(t, "run", "-d", "--name", orig,
		"-e", "FOO=bar", "-e", "EMPTY=",
		"--label", "com.docker.compose.project=p1", "--label", "com.docker.compose.service=web", "--label", "x=y",
		"--user", "0:0", "--workdir", "/tmp", "--restart", "unless-stopped",
		"-v", vol+":/data", "-v", bind+":/bind:ro", "--tmpfs", "/run:size=1m",
		"--network", net1, "--network-alias", "web", "--network-alias", "www",
		"-p", "127.0.0.1:18080:80", "--expose", "81",
		"--health-cmd", "test -d /data", "--health-interval", "300ms", "--health-retries", "2",
		"--cap-add", "NET_ADMIN", "--cap-drop", "MKNOD", "--memory", "64m", "--pids-limit", "100",
		"--log-opt", "max-size=1m", "--log-opt", "max-file=2",
		"--device", "/dev/null:/dev/xnull",
		"--stop-signal", "SIGUSR1", "--stop-timeout", "7", "--ulimit", "nofile=1024:2048",
		"--add-host", "db.example:10.1.2.3", "--domainname", "example.org", "--init",
		"--entrypoint", "/bin/sh", busybox, "-c", "trap 'exit 0' USR1 TERM; while :; do sleep 0.1; done")
	d.Docker(t, "network", "connect", "--alias", "other", net2, orig)

	start := time.Now()
	spec, err := c.Inspect(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Inspect took %v", time.Since(start))

	// What the spec itself promises.
	origInfo := inspect(t, d, orig)
	if spec.Name != orig || !spec.Running || spec.StorageDriver != "overlay2" {
		t.Errorf("spec name/running/driver = %q %v %q", spec.Name, spec.Running, spec.StorageDriver)
	}
	imgID := strings.TrimSpace(d.Docker(t, "image", "inspect", "-f", "{{.Id}}", busybox))
	if spec.Image.Ref != busybox || spec.Image.ID != imgID {
		t.Errorf("spec image = %+v, want %s %s", spec.Image, busybox, imgID)
	}
	wantUpper := origInfo["GraphDriver"].(map[string]any)["Data"].(map[string]any)["UpperDir"].(string)
	if spec.WritableLayer != wantUpper {
		t.Errorf("writable layer %q, want %q", spec.WritableLayer, wantUpper)
	}
	wantNets := map[string]EndpointSpec{net1: {Aliases: []string{"web", "www"}}, net2: {Aliases: []string{"other"}}}
	if diff := cmp.Diff(wantNets, spec.Networks); diff != "" {
		t.Errorf("spec networks (-want +got):\n%s", diff)
	}
	var cfg map[string]any
	if err := json.Unmarshal(spec.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["Hostname"] != "" || cfg["Domainname"] != "example.org" {
		t.Errorf("spec hostname %q domainname %q: the ID hostname must go, the domain stay", cfg["Hostname"], cfg["Domainname"])
	}

	// A restore point stores the spec as JSON; create from what comes back.
	b, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	var stored Spec
	if err := json.Unmarshal(b, &stored); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{net1, net2} {
		ns, err := c.Network(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		ns.Name = rename[n]
		if err := c.CreateNetwork(ctx, ns); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.CreateVolume(ctx, Volume{Name: rename[vol], Driver: "local"}); err != nil {
		t.Fatal(err)
	}
	var asked []string
	start = time.Now()
	id, upper, err := c.Create(ctx, stored, CreateOptions{Name: cp, Rename: func(kind, old string) string {
		asked = append(asked, kind+":"+old)
		if n, ok := rename[old]; ok {
			return n
		}
		return old
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("Create took %v", time.Since(start))
	slices.Sort(asked)
	asked = slices.Compact(asked)
	if want := []string{"network:" + net1, "network:" + net2, "project:p1", "volume:" + vol}; !slices.Equal(asked, want) {
		t.Errorf("Rename asked %v, want %v", asked, want)
	}
	cpInfo := inspect(t, d, cp)
	if cpInfo["Id"] != id || cpInfo["State"].(map[string]any)["Status"] != "created" {
		t.Errorf("created %v in state %v, Create said %s", cpInfo["Id"], cpInfo["State"], id)
	}
	if want := cpInfo["GraphDriver"].(map[string]any)["Data"].(map[string]any)["UpperDir"]; upper != want || upper == "" {
		t.Errorf("upper dir %q, want %q", upper, want)
	}

	// Field by field: the original with the renames applied must be the copy.
	want := func(info map[string]any) map[string]any {
		cfg := info["Config"].(map[string]any)
		hc := info["HostConfig"].(map[string]any)
		delete(cfg, "Hostname") // each its own ID
		return map[string]any{"Config": cfg, "HostConfig": hc, "Networks": endpoints(info)}
	}
	o, g := want(origInfo), want(cpInfo)
	oc, oh := o["Config"].(map[string]any), o["HostConfig"].(map[string]any)
	oc["Labels"].(map[string]any)["com.docker.compose.project"] = "p1-copy"
	for i, b := range oh["Binds"].([]any) {
		if b == vol+":/data" { // the CLI's order of -v varies
			oh["Binds"].([]any)[i] = rename[vol] + ":/data"
		}
	}
	oh["NetworkMode"] = rename[net1]
	on := o["Networks"].(map[string]any)
	on[rename[net1]], on[rename[net2]] = on[net1], on[net2]
	delete(on, net1)
	delete(on, net2)
	if diff := cmp.Diff(o, g); diff != "" {
		t.Errorf("copy differs from the original (-original +copy):\n%s", diff)
	}
	if t.Failed() {
		return
	}

	// The copy runs: the original makes way for its port, then the copy
	// starts, becomes healthy and sees the same bind mount.
	if err := c.Stop(ctx, orig, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	if err := c.WaitHealthy(ctx, id, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("copy healthy %v after start", time.Since(start))
	if got := d.Docker(t, "exec", cp, "cat", "/bind/hello"); got != "bound" {
		t.Errorf("bind mount in copy reads %q", got)
	}
	if got := d.Docker(t, "exec", cp, "hostname"); got != id[:12] {
		t.Errorf("copy's hostname %q, want its own ID prefix %s", got, id[:12])
	}
	if got := d.Docker(t, "port", cp, "80"); got != "127.0.0.1:18080" {
		t.Errorf("copy publishes %q", got)
	}
}

// endpoints returns the configured part of each network endpoint from
// docker inspect, without the engine's own ID alias.
func endpoints(info map[string]any) map[string]any {
	id := info["Id"].(string)[:12]
	out := map[string]any{}
	for name, v := range info["NetworkSettings"].(map[string]any)["Networks"].(map[string]any) {
		ep := v.(map[string]any)
		var aliases []any
		for _, a := range asSlice(ep["Aliases"]) {
			if a != id {
				aliases = append(aliases, a)
			}
		}
		ipam, _ := ep["IPAMConfig"].(map[string]any)
		if len(ipam) == 0 {
			ipam = nil
		}
		drv, _ := ep["DriverOpts"].(map[string]any)
		if len(drv) == 0 {
			drv = nil
		}
		out[name] = map[string]any{"Aliases": aliases, "IPAMConfig": ipam, "Links": ep["Links"], "DriverOpts": drv}
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// TestCreateSameNameStaticIPAndReferences recreates containers after their
// loss, the plain restore: a static address comes back, and a container
// that shared another's network namespace refers to it by name.
func TestCreateSameNameStaticIPAndReferences(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	net, main, side := p+"net", p+"main", p+"side"
	removeAfter(t, d, "network", net)
	removeAfter(t, d, "container", main, side)
	d.Docker(t, "network", "create", "--subnet", "10.99.7.0/24", net)
	d.Docker(t, "run", "-d", "--name", main, "--network", net, "--ip", "10.99.7.10", "--network-alias", "db",
		"--hostname", "custom-host", busybox, "sleep", "600")
	d.Docker(t, "run", "-d", "--name", side, "--network", "container:"+main, "--volumes-from", main+":ro", busybox, "sleep", "600")

	mainSpec, err := c.Inspect(ctx, main)
	if err != nil {
		t.Fatal(err)
	}
	sideSpec, err := c.Inspect(ctx, side)
	if err != nil {
		t.Fatal(err)
	}
	if want := (EndpointSpec{Aliases: []string{"db"}, IPv4Address: "10.99.7.10"}); !cmp.Equal(mainSpec.Networks[net], want) {
		t.Errorf("endpoint %+v, want %+v", mainSpec.Networks[net], want)
	}
	var hc struct {
		NetworkMode string
		VolumesFrom []string
	}
	var cfg struct{ Hostname string }
	if err := json.Unmarshal(sideSpec.HostConfig, &hc); err != nil {
		t.Fatal(err)
	}
	if hc.NetworkMode != "container:"+main || !slices.Equal(hc.VolumesFrom, []string{main + ":ro"}) {
		t.Errorf("side refers to %q and %v, want the name %s (the engine records the ID)", hc.NetworkMode, hc.VolumesFrom, main)
	}
	if err := json.Unmarshal(sideSpec.Config, &cfg); err != nil || cfg.Hostname != "" {
		t.Errorf("side hostname %q (%v): a shared namespace's hostname is the other container's", cfg.Hostname, err)
	}
	if err := json.Unmarshal(mainSpec.Config, &cfg); err != nil || cfg.Hostname != "custom-host" {
		t.Errorf("main hostname %q (%v): a chosen hostname stays", cfg.Hostname, err)
	}

	d.Docker(t, "rm", "-f", side, main)
	mainID, _, err := c.Create(ctx, mainSpec, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.Create(ctx, mainSpec, CreateOptions{}); !errors.Is(err, ErrExists) {
		t.Errorf("second Create: %v, want ErrExists", err)
	}
	sideID, _, err := c.Create(ctx, sideSpec, CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{mainID, sideID} {
		if err := c.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if got := d.Docker(t, "inspect", "-f", "{{(index .NetworkSettings.Networks \""+net+"\").IPAddress}} {{.Config.Hostname}}", main); got != "10.99.7.10 custom-host" {
		t.Errorf("recreated main: %q", got)
	}
	if got := d.Docker(t, "exec", side, "hostname"); got != "custom-host" {
		t.Errorf("side shares main's namespace: hostname %q", got)
	}
	if got := d.Docker(t, "inspect", "-f", "{{.HostConfig.NetworkMode}}", side); got != "container:"+mainID {
		t.Errorf("side's network mode %q, want the new main %s", got, mainID)
	}
}

// TestCreateImageResolution: the reference while it names the recorded
// image, the ID when the reference is gone, and a clear error naming both
// when neither is on the engine.
func TestCreateImageResolution(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	tag := "lifeboat-test/" + strings.TrimSuffix(p, "-") + ":1"
	removeAfter(t, d, "container", p+"a", p+"b", p+"c")
	d.Docker(t, "tag", busybox, tag)
	d.Docker(t, "create", "--name", p+"a", tag, "true")
	spec, err := c.Inspect(ctx, p+"a")
	if err != nil {
		t.Fatal(err)
	}
	if spec.Running {
		t.Error("a created container is not running")
	}
	if ok, err := c.HasImage(ctx, tag); !ok || err != nil {
		t.Fatalf("HasImage(%s) = %v, %v", tag, ok, err)
	}
	id, _, err := c.Create(ctx, spec, CreateOptions{Name: p + "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Docker(t, "inspect", "-f", "{{.Config.Image}}", id); got != tag {
		t.Errorf("image by reference: %q", got)
	}

	d.Docker(t, "rmi", tag) // the image stays, as busybox:1
	if ok, err := c.HasImage(ctx, tag); ok || err != nil {
		t.Fatalf("HasImage(%s) after rmi = %v, %v", tag, ok, err)
	}
	id, _, err = c.Create(ctx, spec, CreateOptions{Name: p + "c"})
	if err != nil {
		t.Fatal(err)
	}
	if got := d.Docker(t, "inspect", "-f", "{{.Config.Image}} {{.Image}}", id); got != spec.Image.ID+" "+spec.Image.ID {
		t.Errorf("image by ID: %q", got)
	}

	spec.Image.ID = "sha256:" + strings.Repeat("0", 64)
	_, _, err = c.Create(ctx, spec, CreateOptions{Name: p + "d"})
	want := "image " + tag + " (" + spec.Image.ID + ") is not on this engine: load or pull it first"
	if err == nil || !strings.Contains(err.Error(), want) || !errors.Is(err, ErrNotFound) {
		t.Errorf("missing image: %v\nwant it to say %q and be ErrNotFound", err, want)
	}
	if out, _ := dockerTry(d, "ps", "-aq", "--filter", "name="+p+"d"); out != "" {
		t.Errorf("a failed Create left %s", out)
	}
	if _, err := c.Image(ctx, tag); !errors.Is(err, ErrNotFound) {
		t.Errorf("Image of a missing tag: %v", err)
	}
}

// TestCreateWritableLayer writes into the upper dir that Create returns,
// before start, as restoring a saved layer does; the container sees it.
func TestCreateWritableLayer(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	removeAfter(t, d, "container", p+"src", p+"dst")
	d.Docker(t, "run", "-d", "--name", p+"src", busybox, "sleep", "600")
	d.Docker(t, "exec", p+"src", "sh", "-c", "echo from-src > /etc/src-file")
	spec, err := c.Inspect(ctx, p+"src")
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(spec.WritableLayer, "etc", "src-file")); err != nil || string(b) != "from-src\n" {
		t.Errorf("the spec's writable layer %q lacks what the container wrote: %q %v", spec.WritableLayer, b, err)
	}
	id, upper, err := c.Create(ctx, spec, CreateOptions{Name: p + "dst"})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(upper, "restored"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(upper, "restored", "file"), []byte("from the layer\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := d.Docker(t, "exec", p+"dst", "cat", "/restored/file"); got != "from the layer" {
		t.Errorf("container reads %q", got)
	}
}

// TestNetworkRoundTrip captures a network and creates it again.
func TestNetworkRoundTrip(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	orig, cp, fresh := p+"orig", p+"copy", p+"fresh"
	removeAfter(t, d, "network", orig, cp, fresh)
	d.Docker(t, "network", "create", "--internal", "--attachable", "--label", "a=b",
		"--opt", "com.docker.network.driver.mtu=1400", "--subnet", "10.98.0.0/24", "--ip-range", "10.98.0.128/25", "--gateway", "10.98.0.1", orig)
	spec, err := c.Network(ctx, orig)
	if err != nil {
		t.Fatal(err)
	}
	want := NetworkSpec{Name: orig, Driver: "bridge", Internal: true, Attachable: true,
		Labels: map[string]string{"a": "b"}, Options: map[string]string{"com.docker.network.driver.mtu": "1400"}}
	if diff := cmp.Diff(want, spec, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".IPAM" }, cmp.Ignore())); diff != "" {
		t.Errorf("network spec (-want +got):\n%s", diff)
	}
	if err := c.CreateNetwork(ctx, spec); !errors.Is(err, ErrExists) {
		t.Errorf("CreateNetwork of an existing name: %v", err)
	}
	// Engines before API 1.44 make a second network of a taken name
	// unless told not to; none may be left behind.
	if ids := d.Docker(t, "network", "ls", "-q", "--filter", "name=^"+orig+"$"); len(strings.Fields(ids)) != 1 {
		t.Errorf("networks named %s after CreateNetwork of a taken name: %q, want one", orig, ids)
	}
	if _, err := c.Network(ctx, p+"nosuch"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Network of a missing one: %v", err)
	}

	// Beside the original the subnet is taken: the engine picks another.
	spec.Name = cp
	if err := c.CreateNetwork(ctx, spec); err != nil {
		t.Fatal(err)
	}
	got, err := c.Network(ctx, cp)
	if err != nil {
		t.Fatal(err)
	}
	want.Name = cp
	if diff := cmp.Diff(want, got, cmp.FilterPath(func(p cmp.Path) bool { return p.Last().String() == ".IPAM" }, cmp.Ignore())); diff != "" {
		t.Errorf("copied network (-want +got):\n%s", diff)
	}
	if strings.Contains(string(got.IPAM), "10.98.0.") {
		t.Errorf("copy got the original's subnet: %s", got.IPAM)
	}

	// Where it is free, the recorded pool is kept exactly.
	d.Docker(t, "network", "rm", orig, cp)
	spec.Name = fresh
	if err := c.CreateNetwork(ctx, spec); err != nil {
		t.Fatal(err)
	}
	got, err = c.Network(ctx, fresh)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.IPAM) != string(spec.IPAM) {
		t.Errorf("ipam %s, want %s", got.IPAM, spec.IPAM)
	}
	if err := c.RemoveNetwork(ctx, fresh); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveNetwork(ctx, fresh); err != nil {
		t.Errorf("removing a gone network: %v", err)
	}
}

// TestCreateUndo: a Create that fails, before or half-way, leaves no
// container; a missing network is found before the engine (20.10 would
// accept it until start).
func TestCreateUndo(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	front, back, auto := p+"front", p+"back", p+"auto"
	removeAfter(t, d, "container", p+"src", p+"a", p+"b", p+"c")
	removeAfter(t, d, "network", front, back, auto)
	d.Docker(t, "network", "create", front)
	d.Docker(t, "network", "create", "--subnet", "10.97.0.0/24", back)
	d.Docker(t, "network", "create", auto)
	d.Docker(t, "create", "--name", p+"src", "--network", front, busybox, "true")
	d.Docker(t, "network", "connect", "--ip", "10.97.0.5", back, p+"src")
	spec, err := c.Inspect(ctx, p+"src")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ from, to, want string }{
		p + "a": {back, p + "missing", `network "` + p + `missing" not found on this engine: create it first`},
		p + "b": {front, p + "missing", `network "` + p + `missing" not found on this engine: create it first`},
		// Connecting after create fails: a static address needs a subnet
		// chosen by the user.
		p + "c": {back, auto, "connect network"},
	} {
		_, _, err := c.Create(ctx, spec, CreateOptions{Name: name, Rename: func(kind, old string) string {
			if kind == "network" && old == tc.from {
				return tc.to
			}
			return old
		}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Create with %s as %s: %v, want it to say %q", tc.from, tc.to, err, tc.want)
		}
		if tc.to == p+"missing" && !errors.Is(err, ErrNotFound) {
			t.Errorf("missing network: %v is not ErrNotFound", err)
		}
		if out, _ := dockerTry(d, "ps", "-aq", "--filter", "name=^/"+name+"$"); out != "" {
			t.Errorf("a failed Create left %s behind: %s", name, out)
		}
	}
}
