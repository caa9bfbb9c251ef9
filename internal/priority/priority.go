// Package priority lowers the process's CPU and I/O priority while a
// backup works beside the containers it protects, and gives it back
// while a unit is frozen or about to be, when finishing fast is what
// shortens the downtime. Priority is the process's on Linux only thread
// by thread, so every thread of it is set, and the threads the Go
// runtime starts later inherit it from the one that starts them.
package priority

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// LowNice is the nice value of a backup beside running containers: the
// same as the dump tools' in the containers, so that the applications'
// own work comes first.
const LowNice = 10

// Low and Normal are the settings a job asks for.
const (
	Low    = "low"
	Normal = "normal"
)

// Check says what is wrong with a setting, in one line.
func Check(v string) error {
	switch v {
	case "", Low, Normal:
		return nil
	}
	return fmt.Errorf("priority %q: give low (the default: the containers' work comes first) or normal", v)
}

// governor holds the process's priority: low while any job runs in the
// background and none is urgent, normal otherwise.
type governor struct {
	mu                 sync.Mutex
	background, urgent int
	nice               int // what the threads were last set to
	set                func(nice int) error
}

var process = &governor{set: func(nice int) error {
	setAutogroup(nice)
	return setThreads(nice)
}}

// Background lowers the process's priority until release, unless a job
// is urgent; it does nothing where the process could not raise it back
// (not root, no CAP_SYS_NICE nor RLIMIT_NICE for it).
func Background() (release func()) {
	if !canRestore() {
		return func() {}
	}
	return process.hold(&process.background)
}

// Urgent gives the process its normal priority until release, whatever
// else runs in the background.
func Urgent() (release func()) { return process.hold(&process.urgent) }

func (g *governor) hold(n *int) func() {
	g.mu.Lock()
	*n++
	g.apply()
	g.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			g.mu.Lock()
			*n--
			g.apply()
			g.mu.Unlock()
		})
	}
}

func (g *governor) apply() {
	want := 0
	if g.background > 0 && g.urgent == 0 {
		want = LowNice
	}
	if want == g.nice {
		return
	}
	// A thread that could not be set keeps the old value; the next
	// change tries again. Priority is a courtesy, never a reason to fail.
	if err := g.set(want); err == nil {
		g.nice = want
	}
}

// setThreads sets every thread's nice value and I/O priority (best
// effort, 7 when low, 4 the kernel's default, when normal). A thread
// started while the list is read may be missed: the list is read again
// until a pass finds none new.
func setThreads(nice int) error {
	done := map[int]bool{}
	for range 5 {
		tids, err := threads()
		if err != nil {
			return err
		}
		added := false
		var errs []error
		for _, tid := range tids {
			if done[tid] {
				continue
			}
			done[tid], added = true, true
			if err := unix.Setpriority(unix.PRIO_PROCESS, tid, nice); err != nil && !errors.Is(err, unix.ESRCH) {
				errs = append(errs, fmt.Errorf("thread %d: %w", tid, err))
			}
			setIOPriority(tid, nice)
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
		if !added {
			return nil
		}
	}
	return nil
}

func threads() ([]int, error) {
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return nil, fmt.Errorf("list threads: %w", err)
	}
	tids := make([]int, 0, len(ents))
	for _, e := range ents {
		if tid, err := strconv.Atoi(e.Name()); err == nil {
			tids = append(tids, tid)
		}
	}
	return tids, nil
}

// ioprio_set(2)'s encoding: class in the top bits, level below.
const (
	ioprioWhoProcess = 1
	ioprioClassBE    = 2
	ioprioClassShift = 13
)

func setIOPriority(tid, nice int) {
	level := 4
	if nice > 0 {
		level = 7
	}
	// Ignored where the I/O scheduler has no priorities (none, mq-deadline).
	unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, uintptr(tid), uintptr(ioprioClassBE<<ioprioClassShift|level))
}

// Where the kernel groups processes by session for the scheduler
// (autogroup, for processes in the root CPU cgroup), a thread's nice value
// orders it only within its session's group: against a container's
// processes, a lowered lifeboat still took a session's full share. Its
// group is lowered too, but only when lifeboat leads its session, as
// serve under systemd or a job cron runs does: otherwise the group holds
// the shell that started lifeboat, which is not lifeboat's to lower.
//
// Both files are variables so a test can run the logic on a kernel
// without autogroups (many VMs and CI machines).
var (
	autogroupFile    = "/proc/self/autogroup"
	autogroupEnabled = "/proc/sys/kernel/sched_autogroup_enabled"
)

// autogroupNormal is the group's nice value before lifeboat first lowered
// it, given back when it is normal again.
var autogroupNormal = -1

func setAutogroup(nice int) {
	if sid, err := unix.Getsid(0); err != nil || sid != os.Getpid() {
		return
	}
	applyAutogroup(nice)
}

// applyAutogroup sets the session group's nice value: nice, or the value
// it had before lifeboat first lowered it when nice is 0.
func applyAutogroup(nice int) {
	if autogroupNormal < 0 {
		n, ok := readAutogroup()
		if !ok {
			return // no autogroups in this kernel, or they are off
		}
		autogroupNormal = n
	}
	if nice == 0 {
		nice = autogroupNormal
	}
	// A courtesy like the rest: a kernel that refuses changes nothing.
	_ = os.WriteFile(autogroupFile, []byte(strconv.Itoa(nice)), 0)
}

// readAutogroup reads the session group's nice value; false where the
// file is missing or autogroups are off.
func readAutogroup() (int, bool) {
	if b, err := os.ReadFile(autogroupEnabled); err != nil || strings.TrimSpace(string(b)) != "1" {
		return 0, false
	}
	b, err := os.ReadFile(autogroupFile)
	if err != nil {
		return 0, false
	}
	return parseAutogroup(string(b))
}

// parseAutogroup parses the kernel's "/autogroup-N nice X".
func parseAutogroup(s string) (int, bool) {
	f := strings.Fields(s)
	if len(f) != 3 || !strings.HasPrefix(f[0], "/autogroup-") || f[1] != "nice" {
		return 0, false
	}
	n, err := strconv.Atoi(f[2])
	return n, err == nil
}

// canRestore reports whether the process may set its nice value back to
// 0 once lowered: root, or an RLIMIT_NICE that allows it.
func canRestore() bool {
	if os.Geteuid() == 0 {
		return true
	}
	var r unix.Rlimit
	return unix.Getrlimit(unix.RLIMIT_NICE, &r) == nil && r.Cur >= 20
}
