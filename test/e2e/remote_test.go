package e2e

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestRemoteEngines backs up and restores through engines reached as
// another host would reach them, over ssh:// (Debian's sshd in the
// engine's namespace, keys made here) and tcp:// with TLS (certificates
// made here): data moves through the Engine API alone, and nothing is
// left on the remote engine.
func TestRemoteEngines(t *testing.T) {
	r := testutil.NewRemoteDaemon(t)
	r.EnsureImages(t, "busybox")
	ssh := r.StartSSH(t)
	local := testutil.StartDaemon(t)
	local.EnsureImages(t, "busybox")
	for _, tc := range []struct {
		name string
		conn []string
	}{
		{"tls", []string{"DOCKER_HOST=" + r.TLSHost, "DOCKER_TLS_VERIFY=1", "DOCKER_CERT_PATH=" + r.CertDir}},
		{"ssh", []string{"DOCKER_HOST=" + ssh.Host, "LIFEBOAT_SSH_CONFIG=" + ssh.Config}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rem, loc := remoteEnvs(t, r, local, tc.conn)
			before := engineState(t, r.Daemon)
			remoteVolume(t, rem, loc, r, tc.name)
			remoteContainer(t, rem, loc, r, tc.name)
			remoteKill(t, rem, r, tc.name)
			after := engineState(t, r.Daemon)
			if diff := cmp.Diff(before, after); diff != "" {
				t.Errorf("the remote engine holds containers or images it did not before (-before +after):\n%s", diff)
			}
		})
	}
}

// remoteEnvs are two users of one repository: one whose DOCKER_HOST is
// the remote engine, one on the local engine.
func remoteEnvs(t *testing.T, r *testutil.Remote, local *testutil.Daemon, conn []string) (rem, loc *env) {
	rem = newEnvOn(t, r.Daemon)
	rem.vars = append(rem.vars, conn...)
	l := *rem
	l.d = local
	l.vars = append(slices.Clone(rem.vars), "DOCKER_HOST="+local.Host, "DOCKER_TLS_VERIFY=", "DOCKER_CERT_PATH=", "LIFEBOAT_SSH_CONFIG=")
	rem.ok("init")
	return rem, &l
}

// engineState is what must not change on a remote engine: its containers
// and its images.
func engineState(t *testing.T, d *testutil.Daemon) []string {
	t.Helper()
	ps := d.Docker(t, "ps", "-a", "--format", "container {{.Names}} {{.Image}}")
	im := d.Docker(t, "images", "-a", "--format", "image {{.ID}} {{.Repository}}:{{.Tag}}")
	out := strings.Fields(strings.ReplaceAll(ps+"\n"+im, " ", "_"))
	slices.Sort(out)
	return out
}

// remoteVolume: a volume of the remote engine to a directory, back onto
// the remote engine, onto the local engine; and a local volume onto the
// remote engine.
func remoteVolume(t *testing.T, rem, loc *env, r *testutil.Remote, tag string) {
	name := "rv" + tag
	mp := rem.volume(name)
	testutil.MakeEdgeTree(t, mp)
	want := testutil.Manifest(t, mp)
	p := rem.backup("volume/" + name)

	dst := filepath.Join(t.TempDir(), "out")
	loc.ok("restore", p.ID, "--volume", name, "--target", dst)
	got := testutil.Manifest(t, dst)
	if d := cmp.Diff(archiveRead(want), archiveRead(got)); d != "" {
		t.Fatalf("volume read from the remote engine differs (-want +got):\n%s", firstLines(d, 60))
	}

	rem.ok("restore", p.ID, "--volume", name, "--as", name+"-back")
	requireSame(t, "restored on the remote engine", got, testutil.Manifest(t, rem.mountpoint(name+"-back")), holesFilled)
	loc.ok("restore", p.ID, "--volume", name, "--as", name+"-here")
	requireSame(t, "restored on the local engine", got, testutil.Manifest(t, loc.mountpoint(name+"-here")), nil)

	// Restore fidelity through the archive upload: a local point, with
	// nanosecond times, xattrs and ACLs, onto the remote engine.
	lname := "lv" + tag
	lmp := loc.volume(lname)
	testutil.MakeEdgeTree(t, lmp)
	lwant := testutil.Manifest(t, lmp)
	lp := loc.backup("volume/" + lname)
	rem.ok("restore", lp.ID, "--volume", lname, "--as", lname+"-there")
	requireSame(t, "local volume restored on the remote engine", lwant, testutil.Manifest(t, rem.mountpoint(lname+"-there")), holesFilled)
	r2 := rem.run(nil, "restore", lp.ID, "--volume", lname, "--as", lname+"-there")
	if r2.code == 0 || !strings.Contains(r2.stderr, "already holds data") {
		t.Errorf("restore onto a remote volume that holds data: exit %d, %s", r2.code, r2.stderr)
	}
}

// remoteContainer: a container with a writable layer (files added,
// changed and deleted) and a volume, backed up from the remote engine and
// restored on the local one.
func remoteContainer(t *testing.T, rem, loc *env, r *testutil.Remote, tag string) {
	name := "rc" + tag
	// The changes come from exec, not the command: a restored container
	// runs its command again.
	rem.d.Docker(t, "run", "-d", "--name", name, "-v", name+"-data:/data", "lifeboat-test/busybox:1", "sleep", "86400")
	rem.d.Docker(t, "exec", name, "sh", "-c",
		"mkdir -p /srv/app/sub && echo hello > /srv/app/f && ln /srv/app/f /srv/app/sub/g && chown 1000:1000 /srv/app/f && "+
			"chmod 4750 /srv/app/f && echo added >> /etc/passwd && rm /bin/vi && rm -r /root && echo v > /data/v")
	p := rem.backup("container/" + name)
	if p.Consistency == "" {
		t.Fatalf("backup: %+v", p)
	}
	wantLayer := testutil.Manifest(t, upperDir(t, rem.d, name))
	rem.d.Docker(t, "rm", "-f", name)
	const seen = "hello\nv\n2\nadded"
	look := "cat /srv/app/sub/g /data/v; ls /bin/vi /root 2>&1 | wc -l; tail -1 /etc/passwd"

	loc.ok("restore", "container/"+name+"@latest")
	gotLayer := testutil.Manifest(t, upperDir(t, loc.d, name))
	requireSame(t, "writable layer restored on the local engine", archiveRead(wantLayer), archiveRead(gotLayer), whiteoutTimes)
	if out := loc.d.Docker(t, "exec", name, "sh", "-c", look); out != seen {
		t.Errorf("container restored on the local engine sees %q", out)
	}
	loc.d.Docker(t, "rm", "-f", name)

	// Back onto the remote engine, as a copy beside the volume it kept.
	rem.ok("restore", "container/"+name+"@latest", "--as", name+"-copy")
	gotLayer = testutil.Manifest(t, upperDir(t, rem.d, name+"-copy"))
	requireSame(t, "writable layer restored on the remote engine", archiveRead(wantLayer), archiveRead(gotLayer), whiteoutTimes)
	if out := rem.d.Docker(t, "exec", name+"-copy", "sh", "-c", look); out != seen {
		t.Errorf("container restored on the remote engine sees %q", out)
	}
	rem.d.Docker(t, "rm", "-f", name+"-copy")

	// A local unit onto the remote engine: nanosecond times come through.
	lname := "lc" + tag
	loc.d.Docker(t, "run", "-d", "--name", lname, "-v", lname+"-data:/data", "lifeboat-test/busybox:1", "sleep", "86400")
	loc.d.Docker(t, "exec", lname, "sh", "-c",
		"mkdir -p /srv/app/sub && echo hello > /srv/app/f && ln /srv/app/f /srv/app/sub/g && chown 1000:1000 /srv/app/f && "+
			"chmod 4750 /srv/app/f && echo added >> /etc/passwd && rm /bin/vi && rm -r /root && echo v > /data/v")
	lwant := testutil.Manifest(t, upperDir(t, loc.d, lname))
	lp := loc.backup("container/" + lname)
	rem.ok("restore", lp.ID)
	requireSame(t, "local container restored on the remote engine", lwant, testutil.Manifest(t, upperDir(t, rem.d, lname)), func(l string) string {
		return whiteoutTimes(overlayRE.ReplaceAllString(l, ""))
	})
	if out := rem.d.Docker(t, "exec", lname, "sh", "-c", look); out != seen {
		t.Errorf("local container restored on the remote engine sees %q", out)
	}
	rem.d.Docker(t, "rm", "-f", lname)
	loc.d.Docker(t, "rm", "-f", lname)
}

// remoteKill kills lifeboat while a helper container exists, in a backup
// and in a restore: the next command removes the helper, and the restore's
// volume with it.
func remoteKill(t *testing.T, rem *env, r *testutil.Remote, tag string) {
	helpers := func() string {
		return rem.d.Docker(t, "ps", "-a", "-q", "--filter", "label=lifeboat.helper")
	}
	name := "rv" + tag
	killAt(t, rem, "helper-created", "backup", "volume/"+name)
	if helpers() == "" {
		t.Fatal("no helper container while the backup was stopped at helper-created")
	}
	res := rem.ok("snapshots")
	if helpers() != "" || !strings.Contains(res.stderr, "removed helper container") {
		t.Fatalf("after a killed backup, the next command left helpers %q (stderr %q)", helpers(), res.stderr)
	}
	if left, _ := filepath.Glob(filepath.Join(stateDir(rem), "stage", "*")); len(left) > 0 {
		t.Errorf("after a killed backup, the next command left its staging area: %v", left)
	}
	killAt(t, rem, "helper-created", "restore", "volume/"+name+"@latest", "--volume", name, "--as", name+"-killed")
	if helpers() == "" {
		t.Fatal("no helper container while the restore was stopped at helper-created")
	}
	rem.ok("snapshots")
	if helpers() != "" {
		t.Fatalf("after a killed restore, helpers are left: %q", helpers())
	}
	if out, _ := rem.d.DockerErr("volume", "ls", "-q", "--filter", "name="+name+"-killed"); out != "" {
		t.Errorf("a killed restore's volume was kept: %q", out)
	}
}

func stateDir(e *env) string {
	for _, v := range e.vars {
		if d, ok := strings.CutPrefix(v, "LIFEBOAT_STATE_DIR="); ok {
			return d
		}
	}
	e.t.Fatal("no LIFEBOAT_STATE_DIR")
	return ""
}

var (
	mtimeRE = regexp.MustCompile(` mtime=(\d+)`)
	xattrRE = regexp.MustCompile(` xattr:[^ ]+`)
	// overlayfs's bookkeeping in an upper directory: not the layer's data.
	overlayRE = regexp.MustCompile(` xattr:trusted\.overlay\.[^ ]+`)
)

// archiveRead is a manifest as the engine's archive endpoint reads a
// tree: modification times in whole seconds, no xattrs (so no ACLs), and
// holes read as zeros (docs/remote.md).
func archiveRead(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		l = mtimeRE.ReplaceAllStringFunc(l, func(m string) string {
			ns, _ := strconv.ParseInt(strings.TrimPrefix(m, " mtime="), 10, 64)
			return fmt.Sprintf(" mtime=%d", ns/1e9*1e9)
		})
		l = xattrRE.ReplaceAllString(l, "")
		out[i] = holesFilled(l)
	}
	return out
}

var sparseRE = regexp.MustCompile(` sparse=(true|false)`)

// holesFilled drops the sparse flag: the engine writes an upload's files
// whole.
func holesFilled(l string) string { return sparseRE.ReplaceAllString(l, "") }

// whiteoutTimes drops the times of whiteouts, which a deletion does not
// have, and of the mount point /data, which the engine shows with its
// mount's (docs/remote.md).
func whiteoutTimes(l string) string {
	if strings.Contains(l, " type=2 ") && strings.Contains(l, " rdev=0") || strings.HasPrefix(l, `"data" `) {
		return mtimeRE.ReplaceAllString(l, "")
	}
	return l
}

func requireSame(t *testing.T, what string, want, got []string, norm func(string) string) {
	t.Helper()
	if norm != nil {
		want, got = mapLines(want, norm), mapLines(got, norm)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("%s: tree differs (-want +got):\n%s", what, firstLines(d, 60))
	}
}

func mapLines(in []string, f func(string) string) []string {
	out := make([]string, len(in))
	for i, l := range in {
		out[i] = f(l)
	}
	slices.Sort(out)
	return out
}

func (e *env) mountpoint(volume string) string {
	e.t.Helper()
	return e.d.Docker(e.t, "volume", "inspect", "-f", "{{.Mountpoint}}", volume)
}

func upperDir(t *testing.T, d *testutil.Daemon, name string) string {
	t.Helper()
	return d.Docker(t, "inspect", "-f", "{{.GraphDriver.Data.UpperDir}}", name)
}
