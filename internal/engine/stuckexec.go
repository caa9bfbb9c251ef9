package engine

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/moby/moby/client"
	"golang.org/x/sys/unix"
)

// A healthcheck probe that the engine starts just as the container is
// frozen hangs in `runc exec` (its `runc init` cannot enter the frozen
// cgroup), and the containerd shim serves the unpause only once that
// start ends: at the probe's timeout, 30 s by default. Measured on Engine
// 20.10 with a probe every 200 ms: about one pause in twenty, the
// container's own processes frozen the whole time (their writes stop
// until the unpause returns). Waiting for the execs in flight before the
// pause did not change the count: the probe can start during the pause
// call itself. So an unpause that has not returned after stuckAfter ends
// such starts at once, as the probe's timeout would: the probe fails
// (one failed check; the container's health counts retries), the
// container thaws.

// stuckAfter is how long an unpause may take before execs being started
// in the container are taken for stuck. An exec start still in flight
// then can only be one that holds the unpause: the shim serves the two
// one at a time, and a start under way in a frozen container does not
// end by itself. An unpause takes 9–90 ms on the machines measured
// (Engine 20.10, runc, cgroup v1); at 500 ms, each held one kept the
// container frozen 555–561 ms in all (scripts/bench-downtime, 2 of 6
// pauses), where 200 ms leaves twice the slowest normal unpause.
var stuckAfter = 200 * time.Millisecond

// unpauseOnce asks the engine once to unpause id, ending stuck exec
// starts (see above) should it not answer in time and id be a full ID.
func (c *Client) unpauseOnce(ctx context.Context, id string) error {
	done := make(chan error, 1)
	go func() {
		_, err := c.api.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{})
		done <- err
	}()
	t := time.NewTimer(stuckAfter)
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
	}
	// id must be the container's full ID, as the freeze journal records
	// it: while a start holds the unpause, the engine answers no inspect
	// of the container either.
	if n := killStuckExecStarts(id); n > 0 {
		c.log.Warn("an exec (a healthcheck probe) was being started in the frozen container and held its unpause: ended it", "container", id, "execs", n)
	}
	return <-done
}

// killStuckExecStarts kills the `runc exec` processes starting an exec in
// container id, and returns how many. Only processes of this PID
// namespace are looked at, so from inside a container (lifeboat's own
// image) there are none, and the unpause waits as before.
func killStuckExecStarts(id string) int {
	if len(id) != 64 {
		return 0
	}
	self, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		if !isExecStart(dir, id) {
			continue
		}
		if ns, err := os.Readlink(filepath.Join(dir, "ns", "pid")); err != nil || ns != self {
			continue
		}
		if unix.Kill(pid, unix.SIGKILL) == nil {
			n++
		}
	}
	return n
}

// isExecStart reports whether the process at dir is `runc ... exec ...
// ID`: the runtime starting an exec in container id.
func isExecStart(dir, id string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return false
	}
	args := bytes.Split(bytes.TrimRight(b, "\x00"), []byte{0})
	if len(args) < 3 || filepath.Base(string(args[0])) != "runc" || string(args[len(args)-1]) != id {
		return false
	}
	for _, a := range args[1 : len(args)-1] {
		if string(a) == "exec" {
			return true
		}
	}
	return false
}
