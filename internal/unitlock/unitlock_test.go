package unitlock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The helper process: with these variables set, the test binary takes a
// lock, says so on stdout, and holds it until killed.
const (
	helperDir  = "UNITLOCK_TEST_HELPER_DIR"
	helperUnit = "UNITLOCK_TEST_HELPER_UNIT"
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(helperDir); dir != "" {
		l, err := Acquire(context.Background(), dir, os.Getenv(helperUnit), Options{Operation: Backup})
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked", l.Unit())
		select {}
	}
	os.Exit(m.Run())
}

// startHolder runs a helper process that holds unit's lock in dir.
func startHolder(t *testing.T, dir, unit string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperDir+"="+dir, helperUnit+"="+unit)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "locked ") {
		t.Fatalf("helper did not lock: %q %v", line, err)
	}
	return cmd
}

func TestOtherProcessHoldsUntilItDies(t *testing.T) {
	dir := t.TempDir()
	holder := startHolder(t, dir, "project/shop")

	_, err := Acquire(t.Context(), dir, "project/shop", Options{Operation: Restore})
	if !errors.Is(err, ErrBusy) {
		t.Fatalf("second process got %v, want ErrBusy", err)
	}
	want := fmt.Sprintf("the backup of project/shop by pid %d since ", holder.Process.Pid)
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not name the holder (%q)", err, want)
	}
	// Another unit is not held.
	other, err := Acquire(t.Context(), dir, "project/other", Options{})
	if err != nil {
		t.Fatalf("lock of another unit: %v", err)
	}
	_ = other.Release()

	// SIGKILL: no cleanup runs, the kernel drops the lock; a waiter gets it.
	var waits atomic.Int32
	got := make(chan error, 1)
	go func() {
		l, err := Acquire(t.Context(), dir, "project/shop", Options{Wait: true, OnWait: func(h Holder) {
			if h.PID == holder.Process.Pid {
				waits.Add(1)
			}
		}})
		if err == nil {
			err = l.Release()
		}
		got <- err
	}()
	// Kill the holder once the waiter has said whom it waits for: on a
	// loaded machine a fixed sleep may not be enough for that.
	for i := 0; waits.Load() == 0 && i < 500; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if err := holder.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiter: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the lock of a killed process was not free")
	}
	if waits.Load() != 1 {
		t.Fatalf("OnWait called %d times with the holder, want 1", waits.Load())
	}
}

func TestOneProcessTwoAcquires(t *testing.T) {
	dir := t.TempDir()
	a, err := Acquire(t.Context(), dir, "container/web", Options{Operation: Backup, Job: "j7"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = Acquire(t.Context(), dir, "container/web", Options{})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "(serve job j7)") {
		t.Fatalf("second acquire in one process: %v", err)
	}
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, FileName("container/web"))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file left after release: %v", err)
	}
	b, err := Acquire(t.Context(), dir, "container/web", Options{})
	if err != nil {
		t.Fatalf("acquire after release: %v", err)
	}
	_ = b.Release()
}

func TestWaitHonoursContext(t *testing.T) {
	dir := t.TempDir()
	a, err := Acquire(t.Context(), dir, "volume/data", Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Release()
	ctx, cancel := context.WithTimeout(t.Context(), 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Acquire(ctx, dir, "volume/data", Options{Wait: true})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the context's error", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancel took %s", d)
	}
}

// TestExclusiveUnderContention has many waiters take and release one lock,
// which removes and recreates its file each time: at no moment may two hold
// it.
func TestExclusiveUnderContention(t *testing.T) {
	dir := t.TempDir()
	var holders, maxHolders, rounds atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 25 {
				l, err := Acquire(t.Context(), dir, "project/p", Options{Wait: true})
				if err != nil {
					t.Error(err)
					return
				}
				n := holders.Add(1)
				if n > maxHolders.Load() {
					maxHolders.Store(n)
				}
				time.Sleep(200 * time.Microsecond)
				holders.Add(-1)
				rounds.Add(1)
				if err := l.Release(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if maxHolders.Load() != 1 || rounds.Load() != 200 {
		t.Fatalf("max holders at once %d (want 1), rounds %d (want 200)", maxHolders.Load(), rounds.Load())
	}
}

func TestSymlinkNotFollowed(t *testing.T) {
	dir, elsewhere := t.TempDir(), t.TempDir()
	victim := filepath.Join(elsewhere, "victim")
	if err := os.Symlink(victim, filepath.Join(dir, FileName("project/x"))); err != nil {
		t.Fatal(err)
	}
	if _, err := Acquire(t.Context(), dir, "project/x", Options{}); err == nil {
		t.Fatal("lock through a planted symlink succeeded")
	}
	if _, err := os.Lstat(victim); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the symlink's target was created: %v", err)
	}
}

func TestAcquireAllSortsAndReleases(t *testing.T) {
	dir := t.TempDir()
	s, err := AcquireAll(t.Context(), dir, []string{"project/b", "project/a", "project/b"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Units(), " "); got != "project/a project/b" {
		t.Fatalf("units %q", got)
	}
	// One of the set held elsewhere: nothing stays taken.
	if _, err := AcquireAll(t.Context(), dir, []string{"project/c", "project/b"}, Options{}); !errors.Is(err, ErrBusy) {
		t.Fatalf("got %v, want ErrBusy", err)
	}
	c, err := Acquire(t.Context(), dir, "project/c", Options{})
	if err != nil {
		t.Fatalf("project/c stayed locked after a failed AcquireAll: %v", err)
	}
	_ = c.Release()
	if err := s.Release(); err != nil {
		t.Fatal(err)
	}
}

func TestFileName(t *testing.T) {
	units := []string{
		"project/shop", "project_shop", "project%2Fshop", "project/a/b", "project/a_b",
		"volume/.", "volume/..", ".hidden", "..", "container/x y", "volume/ü",
		strings.Repeat("v", 300), strings.Repeat("v", 301), strings.Repeat("/", 100),
	}
	seen := map[string]string{}
	for _, u := range units {
		n := FileName(u)
		if prev, ok := seen[n]; ok {
			t.Errorf("%q and %q share the file %q", prev, u, n)
		}
		seen[n] = u
		if strings.ContainsAny(n, "/\x00") || n == "." || n == ".." || strings.HasPrefix(n, ".") || len(n) > 255 {
			t.Errorf("FileName(%q) = %q: not a safe file name", u, n)
		}
	}
	if got := FileName("project/shop"); got != "project%2Fshop.lock" {
		t.Errorf("FileName(project/shop) = %q", got)
	}
}

func TestHolderString(t *testing.T) {
	me, _ := os.Hostname()
	since := time.Date(2026, 12, 1, 21, 3, 4, 0, time.Local)
	h := Holder{Unit: "project/shop", Operation: Backup, PID: 1234, Hostname: me, Since: since}
	if got, want := h.String(), "the backup of project/shop by pid 1234 since 21:03:04"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := (Holder{}).String(); got != "another job" {
		t.Errorf("unknown holder: %q", got)
	}
	h.Hostname = "elsewhere-" + strconv.Itoa(os.Getpid())
	if !strings.Contains(h.String(), " on "+h.Hostname+" ") {
		t.Errorf("another host not named: %q", h.String())
	}
}
