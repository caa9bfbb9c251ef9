package testutil

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// podmanConf is the private service's containers.conf. Every path the
// service writes is under its own directory, so it shares nothing with
// another Podman on the machine: file locks instead of the host-wide
// /dev/shm/libpod_lock, its own netavark config and events file, and
// cgroupfs because there is no systemd. The ulimits are at most the
// caller's own hard limits: rootful Podman otherwise asks for 1048576 open
// files and processes, which a process without CAP_SYS_RESOURCE cannot
// grant (crun fails with EPERM), and the service lowers its own process
// limit below the caller's (to 32768 here), so that one stays modest.
const podmanConf = `[containers]
default_ulimits = ["nofile=%[2]d:%[2]d", "nproc=%[3]d:%[3]d"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "%[1]s/events.log"
lock_type = "file"
runtime = "runc"
tmp_dir = "%[1]s/tmp"
static_dir = "%[1]s/root/libpod"
volume_path = "%[1]s/root/volumes"

[network]
network_backend = "netavark"
network_config_dir = "%[1]s/net"
`

const podmanStorage = `[storage]
driver = "overlay"
graphroot = "%[1]s/root"
runroot = "%[1]s/run"
`

// NewPodman starts a private rootful Podman API service (`podman system
// service`, Docker-compatible) in its own network namespace, with its own
// storage, run directory, network config and socket, as NewDaemon does
// for dockerd. Its Host is a DOCKER_HOST value, so the docker CLI, the
// Daemon's helpers and lifeboat all talk to it. Main stops it.
func NewPodman() (*Daemon, error) {
	for _, tool := range []string{"podman", "runc", "conmon", "/usr/lib/podman/netavark", "ip", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			return nil, fmt.Errorf("%s not found: run scripts/install-deps (Debian's podman, crun, conmon, netavark)", tool)
		}
	}
	cleanStale()
	id := randomID()
	d := &Daemon{Dir: filepath.Join("/tmp", prefix+id), NetNS: prefix + id, podman: true}
	d.DataRoot, d.ExecRoot = filepath.Join(d.Dir, "root"), filepath.Join(d.Dir, "run")
	d.Host = "unix://" + filepath.Join(d.Dir, "podman.sock")
	if err := d.writePodmanConf(); err != nil {
		return nil, err
	}
	if out, err := exec.Command("ip", "netns", "add", d.NetNS).CombinedOutput(); err != nil {
		os.RemoveAll(d.Dir)
		return nil, fmt.Errorf("ip netns add: %v: %s", err, out)
	}
	if out, err := exec.Command("ip", "netns", "exec", d.NetNS, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		d.Stop()
		return nil, fmt.Errorf("netns lo up: %v: %s", err, out)
	}
	if err := d.startPodman(); err != nil {
		return nil, err
	}
	mu2.Lock()
	started = append(started, d)
	mu2.Unlock()
	if err := d.waitReady(60 * time.Second); err != nil {
		log, _ := os.ReadFile(filepath.Join(d.Dir, "podman.log"))
		d.Stop()
		return nil, fmt.Errorf("podman: %w\npodman.log:\n%s", err, tail(string(log), 20))
	}
	return d, nil
}

func (d *Daemon) writePodmanConf() error {
	for _, sub := range []string{"net", "tmp", "root", "run"} {
		if err := os.MkdirAll(filepath.Join(d.Dir, sub), 0o700); err != nil {
			return err
		}
	}
	var nofile, nproc syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile)
	syscall.Getrlimit(6 /* RLIMIT_NPROC */, &nproc)
	files := map[string]string{
		"containers.conf": fmt.Sprintf(podmanConf, d.Dir, min(nofile.Max, 1<<16), min(nproc.Max, 4096)),
		"storage.conf":    fmt.Sprintf(podmanStorage, d.Dir),
		"registries.conf": "", // no search registries: short names never pull
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(d.Dir, name), []byte(body), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// podmanEnv points Podman (the service and the CLI) at this instance's
// configuration only.
func (d *Daemon) podmanEnv() []string {
	return append(os.Environ(),
		"CONTAINERS_CONF="+filepath.Join(d.Dir, "containers.conf"),
		"CONTAINERS_STORAGE_CONF="+filepath.Join(d.Dir, "storage.conf"),
		"CONTAINERS_REGISTRIES_CONF="+filepath.Join(d.Dir, "registries.conf"))
}

func (d *Daemon) startPodman() error {
	logf, err := os.Create(filepath.Join(d.Dir, "podman.log"))
	if err != nil {
		d.Stop()
		return err
	}
	defer logf.Close()
	// nsenter, not `ip netns exec`, as for dockerd: /sys stays as it is.
	cmd := exec.Command("nsenter", "--net=/run/netns/"+d.NetNS, "podman",
		"--root", d.DataRoot, "--runroot", d.ExecRoot,
		"system", "service", "--time=0", d.Host)
	cmd.Env = d.podmanEnv()
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		d.Stop()
		return fmt.Errorf("start podman system service: %w", err)
	}
	d.pid = cmd.Process.Pid
	go cmd.Wait()
	// cleanStale keeps a directory whose docker.pid names a live process.
	return os.WriteFile(filepath.Join(d.Dir, "docker.pid"), []byte(strconv.Itoa(d.pid)), 0o600)
}

// Podman runs the podman CLI against this instance's storage (not through
// the socket: pods and other Podman-only objects) and returns its trimmed
// stdout; a failure fails the test.
func (d *Daemon) Podman(t testing.TB, args ...string) string {
	t.Helper()
	if !d.podman {
		t.Fatalf("podman %s: the daemon is not Podman", strings.Join(args, " "))
	}
	cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + d.NetNS, "podman",
		"--root", d.DataRoot, "--runroot", d.ExecRoot}, args...)...)
	cmd.Env = d.podmanEnv()
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("podman %s: %v: %s", strings.Join(args, " "), err, stderr)
	}
	return strings.TrimSpace(string(out))
}

// stopPodmanHelpers ends what the service leaves running on its own,
// all of it in the service's network namespace: conmon of exec sessions
// (they linger five minutes after the exec ends) and aardvark-dns,
// started for networks with DNS. Only processes in this instance's
// namespace are signalled.
func (d *Daemon) stopPodmanHelpers() {
	var ns syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+d.NetNS, &ns); err != nil {
		return
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/ns/net")
	for _, p := range procs {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) != nil || st.Ino != ns.Ino || st.Dev != ns.Dev {
			continue
		}
		if pid, _ := strconv.Atoi(strings.Split(p, "/")[2]); pid > 1 && pid != os.Getpid() {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// removeAllPodman removes every pod and container at once: Podman's
// compat `rm -f` first waits out each container's stop timeout, ten
// seconds for a PID 1 that ignores SIGTERM.
func (d *Daemon) removeAllPodman() {
	for _, args := range [][]string{{"pod", "rm", "-a", "-f", "-t", "0"}, {"rm", "-a", "-f", "-t", "0"}} {
		cmd := exec.Command("nsenter", append([]string{"--net=/run/netns/" + d.NetNS, "podman",
			"--root", d.DataRoot, "--runroot", d.ExecRoot}, args...)...)
		cmd.Env = d.podmanEnv()
		cmd.Run()
	}
}
