package priority

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestGovernorCounts: low while any job is in the background and none is
// urgent; a release said twice counts once.
func TestGovernorCounts(t *testing.T) {
	var got []int
	g := &governor{set: func(n int) error { got = append(got, n); return nil }}
	b1 := g.hold(&g.background)
	b2 := g.hold(&g.background)
	u := g.hold(&g.urgent)
	b1()
	b1()
	u()
	b2()
	if want := []int{LowNice, 0, LowNice, 0}; !slices.Equal(got, want) {
		t.Fatalf("settings %v, want %v", got, want)
	}
	if g.background != 0 || g.urgent != 0 {
		t.Errorf("counts left: background %d, urgent %d", g.background, g.urgent)
	}
}

// niceOf reads a thread's nice value from /proc (field 19 of stat).
func niceOf(t *testing.T, tid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/task/" + strconv.Itoa(tid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	n, err := strconv.Atoi(f[16])
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestEveryThreadLoweredAndRestored sets the real process: every thread,
// including ones busy in other goroutines, goes to LowNice and back to 0.
func TestEveryThreadLoweredAndRestored(t *testing.T) {
	if !canRestore() {
		t.Fatal("this test needs root or an RLIMIT_NICE of 20: it sets the process's own priority back")
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 { // threads of their own, as the runtime's workers are
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				unix.Getpid()
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	check := func(want int) {
		t.Helper()
		tids, err := threads()
		if err != nil {
			t.Fatal(err)
		}
		for _, tid := range tids {
			if n := niceOf(t, tid); n != want {
				t.Errorf("thread %d of %d: nice %d, want %d", tid, len(tids), n, want)
			}
		}
	}
	release := Background()
	check(LowNice)
	urgent := Urgent()
	check(0)
	urgent()
	check(LowNice)
	release()
	check(0)
	if err := Check("idle"); err == nil {
		t.Error(`Check("idle") passed`)
	}
}

// TestMain runs the test binary as sessionChild when asked to.
func TestMain(m *testing.M) {
	if os.Getenv("LIFEBOAT_PRIORITY_CHILD") == "1" {
		sessionChild()
		return
	}
	os.Exit(m.Run())
}

// sessionChild lowers and raises its priority as a job does, printing its
// session group's nice value after each step.
func sessionChild() {
	say := func() {
		if n, ok := readAutogroup(); ok {
			fmt.Print(n, " ")
		} else {
			fmt.Print("- ")
		}
	}
	say()
	release := Background()
	say()
	urgent := Urgent()
	say()
	urgent()
	say()
	release()
	say()
}

// TestSessionGroupLowered: a lifeboat that leads its session lowers its
// session's scheduling group with its threads, and gives it back; one
// that does not (started by a shell, in the shell's session) leaves the
// group alone. What a child starts in is read by the child itself: the
// test may run in the kernel's root group, which has no autogroup file,
// while a new session gets a group of its own. Without a group (a
// kernel without autogroups, or with them off) every step must leave it
// untouched; TestApplyAutogroup covers the logic on any kernel.
func TestSessionGroupLowered(t *testing.T) {
	if !canRestore() {
		t.Fatal("this test needs root or an RLIMIT_NICE of 20: it sets the process's own priority back")
	}
	for _, leader := range []bool{true, false} {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), "LIFEBOAT_PRIORITY_CHILD=1")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: leader}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("leader %v: %v", leader, err)
		}
		got := strings.Fields(string(out))
		if len(got) != 5 {
			t.Fatalf("leader %v: child printed %q, want five values", leader, out)
		}
		start := got[0]
		want := []string{start, start, start, start, start}
		if leader && start != "-" {
			want[1], want[3] = strconv.Itoa(LowNice), strconv.Itoa(LowNice)
		}
		if start == "-" {
			t.Logf("leader %v: no session group here: checking that nothing is touched", leader)
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("leader %v: session group nice %q, want %q", leader, got, want)
		}
	}
}

// TestApplyAutogroup runs the group's lowering and release against files
// standing in for the kernel's, so it runs on any kernel.
func TestApplyAutogroup(t *testing.T) {
	dir := t.TempDir()
	file, enabled := filepath.Join(dir, "autogroup"), filepath.Join(dir, "enabled")
	defer func(f, e string, n int) { autogroupFile, autogroupEnabled, autogroupNormal = f, e, n }(autogroupFile, autogroupEnabled, autogroupNormal)
	autogroupFile, autogroupEnabled = file, enabled
	write := func(name, s string) {
		if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	read := func() string {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, c := range []struct {
		name, enabled, group string
		want                 [2]string // after lowering, after release
	}{
		{"on", "1\n", "/autogroup-7 nice 3\n", [2]string{"10", "3"}},
		{"off", "0\n", "/autogroup-7 nice 3\n", [2]string{"/autogroup-7 nice 3\n", "/autogroup-7 nice 3\n"}},
		{"garbled", "1\n", "nice 3\n", [2]string{"nice 3\n", "nice 3\n"}},
	} {
		autogroupNormal = -1
		write(enabled, c.enabled)
		write(file, c.group)
		applyAutogroup(LowNice)
		if got := read(); got != c.want[0] {
			t.Errorf("%s: lowered to %q, want %q", c.name, got, c.want[0])
		}
		applyAutogroup(0)
		if got := read(); got != c.want[1] {
			t.Errorf("%s: released to %q, want %q", c.name, got, c.want[1])
		}
	}
	autogroupNormal = -1
	os.Remove(enabled)
	write(file, "/autogroup-7 nice 3\n")
	applyAutogroup(LowNice)
	if got := read(); got != "/autogroup-7 nice 3\n" {
		t.Errorf("no switch file: group became %q", got)
	}
}
