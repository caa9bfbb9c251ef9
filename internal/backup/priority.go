package backup

import (
	"log/slog"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// A backup reads and compresses beside the unit's own work: a dump's
// stream, a live pass. On a small host lifeboat's threads, each weighted
// as much as the whole container's group by the scheduler, took a
// quarter to two fifths of a database's throughput while it dumped. So
// lifeboat runs at a lower CPU priority while a job runs, and at a
// higher one while a unit is frozen: then the freeze is the downtime,
// nothing of the unit runs to yield to, and on a busy host the frozen
// pass's comparisons would otherwise wait behind every other process.
const (
	backgroundNice = 10
	frozenNice     = -10
)

var prio struct {
	mu           sync.Mutex
	jobs, frozen int
	nice         int
	log          *slog.Logger
}

// jobPriority counts a job in until the returned func is called.
func jobPriority(log *slog.Logger) func() {
	return adjustPriority(log, 1, 0)
}

// frozenPriority counts a freeze in until the returned func is called.
func frozenPriority(log *slog.Logger) func() {
	return adjustPriority(log, 0, 1)
}

func adjustPriority(log *slog.Logger, jobs, frozen int) func() {
	prio.mu.Lock()
	defer prio.mu.Unlock()
	prio.jobs += jobs
	prio.frozen += frozen
	prio.log = log
	setNiceLocked()
	var once sync.Once
	return func() {
		once.Do(func() {
			prio.mu.Lock()
			defer prio.mu.Unlock()
			prio.jobs -= jobs
			prio.frozen -= frozen
			setNiceLocked()
		})
	}
}

func setNiceLocked() {
	want := 0
	switch {
	case prio.frozen > 0:
		want = frozenNice
	case prio.jobs > 0:
		want = backgroundNice
	}
	if want == prio.nice {
		return
	}
	if err := setNice(want); err != nil {
		// Only a matter of speed: a job runs all the same.
		prio.log.Debug("CPU priority not changed", "nice", want, "err", err)
		return
	}
	prio.nice = want
}

// setNice gives every thread of the process the nice value n: Linux keeps
// it per thread, and threads started later inherit it from theirs.
func setNice(n int) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	var first error
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.Setpriority(unix.PRIO_PROCESS, tid, n); err != nil && first == nil && err != unix.ESRCH {
			first = err
		}
	}
	return first
}
