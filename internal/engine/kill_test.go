package engine

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestKillTreeLeavesNoOrphan kills a shell tree as a cancelled hook is
// killed, with this test process as the reaper of orphans, as a
// container's PID 1 is: nothing may reach it but the tree's top, its own
// child; every process below must be reaped by its own parent and gone.
func TestKillTreeLeavesNoOrphan(t *testing.T) {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	for _, script := range []string{
		"sleep 30; sleep 31; true",
		`sh -c "sleep 32; true"; sleep 33`,
		"sleep 34 & sleep 35; wait",
	} {
		top := exec.Command("sh", "-c", script)
		if err := top.Start(); err != nil {
			t.Fatal(err)
		}
		var below []int
		for range 200 { // until the first sleep runs
			if below = readTree(top.Process.Pid).all[1:]; len(below) > 0 && strings.Contains(cmdline(below[len(below)-1]), "sleep") {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if len(below) == 0 {
			t.Fatalf("%s: no process below the shell", script)
		}
		killTree(top.Process.Pid)
		top.Wait()
		var ws syscall.WaitStatus
		if p, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil); p > 0 {
			t.Errorf("%s: process %d (%v) reached the reaper of orphans", script, p, ws)
		} else if err != nil && err != syscall.ECHILD {
			t.Fatal(err)
		}
		for _, p := range below {
			if _, err := os.Stat("/proc/" + strconv.Itoa(p)); err == nil {
				t.Errorf("%s: process %d (%s) is left", script, p, cmdline(p))
				syscall.Kill(p, syscall.SIGKILL)
			}
		}
	}
}

func cmdline(pid int) string {
	b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.ReplaceAll(string(b), "\x00", " ")
}
