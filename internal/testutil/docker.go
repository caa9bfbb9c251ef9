// Package testutil starts the real components tests run against — private
// Docker daemons, locally built images — and compares file trees. A test
// that needs one of them fails with the reason when it cannot be had; it
// never skips.
package testutil

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Daemon is a private Docker Engine: its own data root, exec root, socket
// and network namespace (loopback only), so tests never touch the host's
// engine and nothing they run can reach out.
type Daemon struct {
	Host     string // unix:///…/docker.sock
	Dir      string
	DataRoot string
	ExecRoot string
	NetNS    string
	pid      int
	sharesNS bool // the netns belongs to another daemon
	podman   bool // a Podman API service (see NewPodman), not dockerd
}

var (
	mu     sync.Mutex // guards shared
	shared *Daemon

	mu2     sync.Mutex // guards started
	started []*Daemon
)

const prefix = "lbt-"

// StartDaemon returns the test binary's shared private daemon, starting it
// on first use.
func StartDaemon(t testing.TB) *Daemon {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	if shared != nil {
		return shared
	}
	d, err := NewDaemon()
	if err != nil {
		t.Fatalf("start a private Docker daemon: %v", err)
	}
	shared = d
	return d
}

// NewDaemon starts one more private daemon (for restores "on another host").
// Main stops every daemon started.
func NewDaemon() (*Daemon, error) { return newDaemon("") }

// NewDaemonArgs starts a private daemon with extra dockerd arguments.
func NewDaemonArgs(extra ...string) (*Daemon, error) { return newDaemonOpts("", "", extra...) }

// NewDaemonBeside starts a daemon in other's network namespace: "another
// host" that reaches the same registry on 127.0.0.1.
func NewDaemonBeside(other *Daemon) (*Daemon, error) { return newDaemon(other.NetNS) }

// NewDaemonWithDataRoot starts a daemon whose data root is dataRoot (say,
// on a btrfs test filesystem) with the overlay2 driver, the common
// production set-up even on btrfs.
func NewDaemonWithDataRoot(dataRoot string) (*Daemon, error) {
	return newDaemonOpts("", dataRoot, "--storage-driver", "overlay2")
}

func newDaemon(netns string) (*Daemon, error) { return newDaemonOpts(netns, "") }

func newDaemonOpts(netns, dataRoot string, extra ...string) (*Daemon, error) {
	for _, tool := range []string{"dockerd", "docker", "ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found: run scripts/install-deps (Debian's docker.io and iproute2)", tool)
		}
	}
	cleanStale()
	id := randomID()
	// Sockets must stay under 108 bytes: a short directory in /tmp.
	d := &Daemon{Dir: filepath.Join("/tmp", prefix+id), NetNS: prefix + id}
	if netns != "" {
		d.NetNS, d.sharesNS = netns, true
	}
	d.DataRoot, d.ExecRoot = filepath.Join(d.Dir, "root"), filepath.Join(d.Dir, "exec")
	if dataRoot != "" {
		d.DataRoot = dataRoot
	}
	d.Host = "unix://" + filepath.Join(d.Dir, "docker.sock")
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return nil, err
	}
	if !d.sharesNS {
		if out, err := exec.Command("ip", "netns", "add", d.NetNS).CombinedOutput(); err != nil {
			return nil, fmt.Errorf("ip netns add: %v: %s", err, out)
		}
		if out, err := exec.Command("ip", "netns", "exec", d.NetNS, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
			d.Stop()
			return nil, fmt.Errorf("netns lo up: %v: %s", err, out)
		}
	}
	logf, err := os.Create(filepath.Join(d.Dir, "dockerd.log"))
	if err != nil {
		d.Stop()
		return nil, err
	}
	defer logf.Close()
	// nsenter, not `ip netns exec`: the latter remounts /sys and dockerd then
	// finds no devices cgroup.
	cmd := exec.Command("nsenter", "--net=/run/netns/"+d.NetNS, "dockerd",
		"--data-root", d.DataRoot, "--exec-root", d.ExecRoot, "-H", d.Host,
		"--pidfile", filepath.Join(d.Dir, "docker.pid"),
		"--bridge=none", "--iptables=false", "--ip6tables=false")
	cmd.Args = append(cmd.Args, extra...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		d.Stop()
		return nil, fmt.Errorf("start dockerd: %w", err)
	}
	d.pid = cmd.Process.Pid
	go cmd.Wait()
	mu2.Lock()
	started = append(started, d)
	mu2.Unlock()
	if err := d.waitReady(60 * time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(d.Dir, "dockerd.log"))
		d.Stop()
		return nil, fmt.Errorf("%w\ndockerd.log:\n%s", err, tail(string(log), 20))
	}
	return d, nil
}

func (d *Daemon) waitReady(timeout time.Duration) error {
	sock := strings.TrimPrefix(d.Host, "unix://")
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}, Timeout: 2 * time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if resp, err := hc.Get("http://docker/_ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if syscall.Kill(d.pid, 0) != nil {
			return fmt.Errorf("dockerd exited")
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("dockerd did not answer within %v", timeout)
}

// Stop removes the daemon's containers, stops it, and removes its mounts,
// network namespace and directory.
func (d *Daemon) Stop() error {
	if d.pid > 0 {
		if d.podman {
			d.removeAllPodman()
		}
		if ids, err := d.docker("ps", "-aq"); err == nil && ids != "" {
			d.docker(append([]string{"rm", "-f"}, strings.Fields(ids)...)...)
		}
		syscall.Kill(d.pid, syscall.SIGTERM)
		for i := 0; i < 200 && syscall.Kill(d.pid, 0) == nil; i++ {
			time.Sleep(100 * time.Millisecond)
		}
		syscall.Kill(d.pid, syscall.SIGKILL)
		d.pid = 0 // never signal a PID that may since belong to another process
	}
	if d.podman {
		d.stopPodmanHelpers()
	}
	unmountUnder(d.Dir)
	if !strings.HasPrefix(d.DataRoot, d.Dir+"/") {
		unmountUnder(d.DataRoot)
	}
	if !d.sharesNS {
		exec.Command("ip", "netns", "del", d.NetNS).Run()
	}
	return os.RemoveAll(d.Dir)
}

// Docker runs the docker CLI against the daemon and returns its trimmed
// stdout; a failure fails the test.
func (d *Daemon) Docker(t testing.TB, args ...string) string {
	t.Helper()
	out, err := d.docker(args...)
	if err != nil {
		t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// Pause freezes a container as a user's `docker pause` would, asking
// again when runc reports "unable to freeze": on a loaded host runc gives
// up on a cgroup that does not settle in time and leaves it thawed, which
// says nothing about the code under test.
func (d *Daemon) Pause(t testing.TB, name string) {
	t.Helper()
	var err error
	for attempt := 1; attempt <= 5; attempt++ {
		if _, err = d.docker("pause", name); err == nil || !strings.Contains(err.Error(), "unable to freeze") {
			break
		}
		time.Sleep(time.Duration(attempt) * 200 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("docker pause %s: %v", name, err)
	}
}

// StartRegistry runs Debian's docker-registry in the daemon's network
// namespace on 127.0.0.1:5000, with deletes enabled, until the test ends.
// It returns its address.
func (d *Daemon) StartRegistry(t testing.TB) string {
	t.Helper()
	if _, err := exec.LookPath("docker-registry"); err != nil {
		t.Fatalf("docker-registry not found: run scripts/install-deps")
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "registry.yml")
	conf := fmt.Sprintf("version: 0.1\nlog: {level: warn}\nstorage: {filesystem: {rootdirectory: %s}, delete: {enabled: true}}\nhttp: {addr: 127.0.0.1:5000}\n", filepath.Join(dir, "data"))
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("nsenter", "--net=/run/netns/"+d.NetNS, "docker-registry", "serve", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start registry: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); logf.Close() })
	for i := 0; i < 100; i++ {
		if d.InNetNS("curl", "-sf", "http://127.0.0.1:5000/v2/") == nil {
			return "127.0.0.1:5000"
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "registry.log"))
	t.Fatalf("registry did not start:\n%s", b)
	return ""
}

// InNetNS runs a command in the daemon's network namespace.
func (d *Daemon) InNetNS(name string, args ...string) error {
	return exec.Command("nsenter", append([]string{"--net=/run/netns/" + d.NetNS, name}, args...)...).Run()
}

// DockerErr runs the docker CLI and returns its error instead of failing.
func (d *Daemon) DockerErr(args ...string) (string, error) { return d.docker(args...) }

func (d *Daemon) docker(args ...string) (string, error) {
	cmd := exec.Command("docker", append([]string{"-H", d.Host}, args...)...)
	cmd.Env = append(os.Environ(), "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%v: %s", err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// EnsureImages loads (or builds, once, into the cache) the test images:
// "busybox" for lifeboat-test/busybox:1 only, "all" for the databases too.
func (d *Daemon) EnsureImages(t testing.TB, which string) {
	t.Helper()
	cache := os.Getenv("LIFEBOAT_TEST_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "lifeboat-test")
	}
	args := []string{cache}
	if which == "busybox" {
		args = append([]string{"--only", "busybox"}, args...)
	}
	cmd := exec.Command(filepath.Join(RepoRoot(), "scripts", "build-test-images"), args...)
	cmd.Env = append(os.Environ(), "DOCKER_HOST="+d.Host, "DOCKER_CONFIG="+filepath.Join(d.Dir, "cli"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("test images: %v\n%s", err, tail(string(out), 30))
	}
}

// RepoRoot is the checkout's root directory.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// Main runs the tests, then stops every daemon they started.
func Main(m *testing.M) {
	code := m.Run()
	mu2.Lock()
	for _, d := range started {
		d.Stop()
	}
	mu2.Unlock()
	os.Exit(code)
}

// cleanStale removes what killed test runs left behind: our netns and
// directories whose dockerd is gone.
func cleanStale() {
	dirs, _ := filepath.Glob("/tmp/" + prefix + "*")
	for _, dir := range dirs {
		b, err := os.ReadFile(filepath.Join(dir, "docker.pid"))
		if err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 && syscall.Kill(pid, 0) == nil {
				continue
			}
		} else if st, err := os.Stat(dir); err == nil && time.Since(st.ModTime()) < 10*time.Minute {
			continue // possibly still starting
		}
		unmountUnder(dir)
		exec.Command("ip", "netns", "del", filepath.Base(dir)).Run()
		os.RemoveAll(dir)
	}
}

func unmountUnder(dir string) {
	b, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return
	}
	var mps []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && (f[1] == dir || strings.HasPrefix(f[1], dir+"/")) {
			mps = append(mps, f[1])
		}
	}
	for i := len(mps) - 1; i >= 0; i-- {
		syscall.Unmount(mps[i], syscall.MNT_DETACH)
	}
}

func randomID() string {
	b := make([]byte, 4)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
