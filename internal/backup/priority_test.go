package backup

import (
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"
)

// nices are the nice values of all the process's threads.
func nices(t *testing.T) map[int]bool {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]bool{}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
		if err != nil {
			continue
		}
		// Fields after the command's closing parenthesis; nice is field 19.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		n, _ := strconv.Atoi(f[16])
		out[n] = true
	}
	return out
}

// TestPriorityLowWhileAJobRunsHighWhileFrozen: every thread runs at nice
// 10 while a job runs, at -10 while a unit is frozen, and at 0 after the
// last job, whichever order two jobs end in. Raising a priority needs
// root, as lifeboat runs.
func TestPriorityLowWhileAJobRunsHighWhileFrozen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root, as lifeboat runs (raising a priority back needs CAP_SYS_NICE)")
	}
	log := slog.New(slog.DiscardHandler)
	want := func(step string, n int) {
		t.Helper()
		if got := nices(t); len(got) != 1 || !got[n] {
			t.Fatalf("%s: threads' nice values %v, want all %d", step, got, n)
		}
	}
	want("before", 0)
	job1 := jobPriority(log)
	want("job", backgroundNice)
	job2 := jobPriority(log)
	thaw := frozenPriority(log)
	want("frozen", frozenNice)
	thaw()
	thaw()
	want("thawed", backgroundNice)
	job1()
	want("one job left", backgroundNice)
	job2()
	want("after", 0)
}
