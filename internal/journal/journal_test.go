package journal

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/flock"
)

// call is one undo call the fake undoer saw.
type call struct {
	Op string // "start" or "unpause"
	ID string
	// At is the stop deadline of a start, the freeze time of an unpause.
	At time.Time
}

// fakeUndoer records calls and fails those for IDs in fail. It may be
// shared by concurrent replays.
type fakeUndoer struct {
	mu    sync.Mutex
	calls []call
	fail  map[string]error
}

func (f *fakeUndoer) record(op, id string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call{op, id, at})
	return f.fail[id]
}

func (f *fakeUndoer) Thaw(_ context.Context, id string, at time.Time) error {
	return f.record("unpause", id, at)
}

func (f *fakeUndoer) Resume(_ context.Context, id string, at time.Time) error {
	return f.record("start", id, at)
}

// Calls returns the calls seen, without their times.
func (f *fakeUndoer) Calls() []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := slices.Clone(f.calls)
	for i := range out {
		out[i].At = time.Time{}
	}
	return out
}

// connectTo returns a connect function that hands out u and counts how
// often it was called, checking the engine host.
func connectTo(t *testing.T, u Undoer, host string, n *int) func(context.Context, string) (Undoer, error) {
	var mu sync.Mutex
	return func(_ context.Context, h string) (Undoer, error) {
		mu.Lock()
		defer mu.Unlock()
		if n != nil {
			*n++
		}
		if h != host {
			t.Errorf("connect to %q, want %q", h, host)
		}
		return u, nil
	}
}

const testHost = "unix:///run/test-docker.sock"

func testLog(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func openTest(t *testing.T, dir string) *Journal {
	t.Helper()
	j, err := Open(dir, testLog(t))
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return j
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("read journal dir: %v", err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

func readEntry(t *testing.T, path string) Entry {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read entry: %v", err)
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("decode entry %s: %v", b, err)
	}
	return e
}

// writeDead writes an entry file that no process holds, as a dead owner
// leaves it.
func writeDead(t *testing.T, dir string, e Entry) string {
	t.Helper()
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	name := fileName(e.Unit)
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
		t.Fatal(err)
	}
	return name
}

func stoppedEntry(unit string, ids ...string) Entry {
	e := Entry{Unit: unit, EngineHost: testHost, PID: 1, Started: time.Now().UTC().Truncate(time.Second)}
	for i, id := range ids {
		e.Containers = append(e.Containers, Container{ID: id, Name: "name-" + id, Action: Stopped, Order: i})
	}
	return e
}

const (
	helperDirEnv     = "LIFEBOAT_JOURNAL_HELPER_DIR"
	helperEntriesEnv = "LIFEBOAT_JOURNAL_HELPER_ENTRIES"
)

// TestHelperProcess is not a test: run by startOwner in a child process,
// it begins the entries it is given, says "ready" and waits to be killed.
func TestHelperProcess(t *testing.T) {
	dir := os.Getenv(helperDirEnv)
	if dir == "" {
		return // an ordinary test run: nothing to do
	}
	var es []Entry
	if err := json.Unmarshal([]byte(os.Getenv(helperEntriesEnv)), &es); err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	j, err := Open(dir, nil)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(2)
	}
	var hs []*Handle
	for _, e := range es {
		h, err := j.Begin(context.Background(), e)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
		hs = append(hs, h)
	}
	fmt.Println("ready")
	time.Sleep(time.Hour)
	fmt.Println(len(hs)) // keeps the handles reachable while sleeping
	os.Exit(0)
}

// owner is a child process that holds journal entries.
type owner struct {
	t   *testing.T
	cmd *exec.Cmd
}

// startOwner starts a child process that begins es in dir and returns
// once they are recorded.
func startOwner(t *testing.T, dir string, es ...Entry) *owner {
	t.Helper()
	b, err := json.Marshal(es)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperDirEnv+"="+dir, helperEntriesEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start owner: %v", err)
	}
	o := &owner{t: t, cmd: cmd}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("owner said %q (%v), want ready", line, err)
	}
	return o
}

// kill kills the owner with SIGKILL, so that nothing of it runs to clean
// up, and waits for it to be gone.
func (o *owner) kill() {
	o.t.Helper()
	if err := o.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		o.t.Fatalf("kill owner: %v", err)
	}
	err := o.cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		o.t.Fatalf("owner ended with %v, want killed", err)
	}
}

func TestOpenCreatesPrivateDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state", "journal")
	j := openTest(t, dir)
	fi, err := os.Stat(j.Dir())
	if err != nil {
		t.Fatal(err)
	}
	if !fi.IsDir() || fi.Mode().Perm() != 0o700 {
		t.Fatalf("journal directory mode %v, want a 0700 directory", fi.Mode())
	}
	if _, err := Open("", nil); err == nil {
		t.Fatal("open without a directory succeeded")
	}
}

func TestFileName(t *testing.T) {
	h, err := openTest(t, t.TempDir()).Begin(t.Context(), stoppedEntry("compose/my app:ü"))
	if err != nil {
		t.Fatal(err)
	}
	defer h.Done()
	want := regexp.MustCompile(fmt.Sprintf(`^compose_my_app_-%d-[0-9a-f]{16}\.json$`, os.Getpid()))
	if !want.MatchString(h.Name()) {
		t.Fatalf("file name %q does not match %v", h.Name(), want)
	}
	if n := fileName(strings.Repeat("x", 1000)); len(n) > 255 {
		t.Fatalf("file name of a long unit is %d bytes", len(n))
	}
	if n := fileName(""); !strings.HasPrefix(n, "entry-") {
		t.Fatalf("file name of an empty unit is %q", n)
	}
}

// TestReplaySkipsLiveOwnerInProcess shows that flock locks belong to the
// open file description: Replay's own open of an entry cannot take the lock
// a Handle of the same process holds, so an in-process owner (the daemon's
// running backup) counts as alive.
func TestReplaySkipsLiveOwnerInProcess(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	h, err := j.Begin(t.Context(), stoppedEntry("container/web", "a", "b"))
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	defer h.Done()
	path := filepath.Join(dir, h.Name())

	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); !errors.Is(err, unix.EWOULDBLOCK) {
		t.Fatalf("second open of a held entry: flock = %v, want EWOULDBLOCK", err)
	}

	u := &fakeUndoer{}
	n := 0
	for _, jj := range []*Journal{j, openTest(t, dir)} {
		got, err := jj.Replay(t.Context(), connectTo(t, u, testHost, &n))
		if err != nil || len(got) != 0 {
			t.Fatalf("replay = %v, %v; want nothing", got, err)
		}
	}
	if c := u.Calls(); len(c) != 0 || n != 0 {
		t.Fatalf("undo calls %v, %d connects for a live owner", c, n)
	}
	if e := readEntry(t, path); len(e.Containers) != 2 {
		t.Fatalf("entry changed: %+v", e)
	}
}

// TestReplayUndoesDeadOwner kills an owner with SIGKILL, as the kernel
// then drops its locks whatever state it was in, and replays its entries.
func TestReplayUndoesDeadOwner(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	stop := Entry{Unit: "compose/shop", EngineHost: testHost, Containers: []Container{
		{ID: "id-web", Name: "web", Action: Stopped, Order: 2},
		{ID: "id-db", Name: "db", Action: Stopped, Order: 0},
		{ID: "id-cache", Name: "cache", Action: Stopped, Order: 1},
	}}
	pause := Entry{Unit: "container/blog", EngineHost: testHost, Containers: []Container{
		{ID: "id-blog", Name: "blog", Action: Paused},
		{ID: "id-side", Name: "side", Action: Paused},
	}}
	o := startOwner(t, dir, stop, pause)
	if n := len(entries(t, dir)); n != 2 {
		t.Fatalf("%d entries after the owner began 2: %v", n, entries(t, dir))
	}
	for _, name := range entries(t, dir) {
		if e := readEntry(t, filepath.Join(dir, name)); e.PID != o.cmd.Process.Pid || e.Started.IsZero() {
			t.Errorf("entry %s: pid %d, started %v; want the owner's pid and a time", name, e.PID, e.Started)
		}
	}

	// Alive in another process: skipped.
	u := &fakeUndoer{}
	got, err := j.Replay(t.Context(), connectTo(t, u, testHost, nil))
	if err != nil || len(got) != 0 || len(u.Calls()) != 0 {
		t.Fatalf("replay with a live owner = %v, %v, calls %v; want nothing", got, err, u.Calls())
	}

	o.kill()
	n := 0
	got, err = j.Replay(t.Context(), connectTo(t, u, testHost, &n))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if n != 1 {
		t.Errorf("%d connects for two entries on one engine, want 1", n)
	}
	byUnit := map[string][]string{}
	for _, r := range got {
		if r.Err != nil {
			t.Errorf("replay of %s: %v", r.Unit, r.Err)
		}
		byUnit[r.Unit] = r.Containers
	}
	want := map[string][]string{"compose/shop": {"db", "cache", "web"}, "container/blog": {"blog", "side"}}
	if fmt.Sprint(byUnit) != fmt.Sprint(want) {
		t.Errorf("replayed %v, want %v", byUnit, want)
	}
	var starts, unpauses []string
	for _, c := range u.Calls() {
		switch c.Op {
		case "start":
			starts = append(starts, c.ID)
		case "unpause":
			unpauses = append(unpauses, c.ID)
		}
	}
	if !slices.Equal(starts, []string{"id-db", "id-cache", "id-web"}) {
		t.Errorf("started %v, want db, cache, web in ascending order", starts)
	}
	if !slices.Equal(unpauses, []string{"id-blog", "id-side"}) {
		t.Errorf("unpaused %v, want blog, side", unpauses)
	}
	if left := entries(t, dir); len(left) != 0 {
		t.Errorf("journal not emptied: %v", left)
	}

	// Nothing left to do.
	got, err = j.Replay(t.Context(), connectTo(t, u, testHost, nil))
	if err != nil || len(got) != 0 || len(u.Calls()) != 5 {
		t.Fatalf("second replay = %v, %v, calls %v; want nothing new", got, err, u.Calls())
	}
}

func TestReplayKeepsEntryWhenUndoFails(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	name := writeDead(t, dir, stoppedEntry("compose/app", "a", "b", "c"))

	broken := errors.New("no such network")
	u := &fakeUndoer{fail: map[string]error{"b": broken}}
	got, err := j.Replay(t.Context(), connectTo(t, u, testHost, nil))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if len(got) != 1 || !errors.Is(got[0].Err, broken) || !strings.Contains(got[0].Err.Error(), "name-b") {
		t.Fatalf("replay = %+v, want one entry failing on name-b", got)
	}
	if !slices.Equal(got[0].Containers, []string{"name-a", "name-c"}) {
		t.Errorf("resumed %v, want name-a, name-c: a failure does not stop the others", got[0].Containers)
	}
	if c := u.Calls(); len(c) != 3 {
		t.Errorf("calls %v, want a start for each of a, b, c", c)
	}
	// Kept, with only what is left to undo.
	if e := readEntry(t, filepath.Join(dir, name)); len(e.Containers) != 1 || e.Containers[0].ID != "b" || e.Unit != "compose/app" {
		t.Fatalf("kept entry %+v, want only container b", e)
	}
	if left := entries(t, dir); len(left) != 1 {
		t.Fatalf("journal holds %v, want the one entry", left)
	}

	u = &fakeUndoer{}
	got, err = j.Replay(t.Context(), connectTo(t, u, testHost, nil))
	if err != nil || len(got) != 1 || got[0].Err != nil {
		t.Fatalf("second replay = %+v, %v; want success", got, err)
	}
	if c := u.Calls(); !slices.Equal(c, []call{{Op: "start", ID: "b"}}) {
		t.Errorf("second replay calls %v, want only start b", c)
	}
	if left := entries(t, dir); len(left) != 0 {
		t.Errorf("journal not emptied: %v", left)
	}
}

func TestReplayKeepsEntryWhenEngineUnreachable(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	writeDead(t, dir, stoppedEntry("container/one", "a"))
	writeDead(t, dir, stoppedEntry("container/two", "b"))

	unreachable := errors.New("connection refused")
	n := 0
	got, err := j.Replay(t.Context(), func(context.Context, string) (Undoer, error) {
		n++
		return nil, unreachable
	})
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if len(got) != 2 || !errors.Is(got[0].Err, unreachable) || !errors.Is(got[1].Err, unreachable) {
		t.Fatalf("replay = %+v, want both entries failing to connect", got)
	}
	if n != 1 {
		t.Errorf("%d connect attempts for one engine, want 1", n)
	}
	if left := entries(t, dir); len(left) != 2 {
		t.Fatalf("journal holds %v, want both entries", left)
	}

	u := &fakeUndoer{}
	got, err = j.Replay(t.Context(), connectTo(t, u, testHost, nil))
	if err != nil || len(got) != 2 || got[0].Err != nil || got[1].Err != nil {
		t.Fatalf("replay with the engine back = %+v, %v", got, err)
	}
	if left := entries(t, dir); len(left) != 0 {
		t.Errorf("journal not emptied: %v", left)
	}
}

func TestReplayUnknownActionKept(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	e := stoppedEntry("container/x", "a")
	e.Containers = append(e.Containers, Container{ID: "z", Name: "z", Action: "checkpointed"})
	name := writeDead(t, dir, e)
	u := &fakeUndoer{}
	got, err := j.Replay(t.Context(), connectTo(t, u, testHost, nil))
	if err != nil || len(got) != 1 || got[0].Err == nil || !strings.Contains(got[0].Err.Error(), "checkpointed") {
		t.Fatalf("replay = %+v, %v; want an unknown action error", got, err)
	}
	if kept := readEntry(t, filepath.Join(dir, name)); len(kept.Containers) != 1 || kept.Containers[0].ID != "z" {
		t.Fatalf("kept %+v, want only the unknown action", kept)
	}
}

func TestUpdateAndDone(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	e := stoppedEntry("compose/app", "a")
	h, err := j.Begin(t.Context(), e)
	if err != nil {
		t.Fatalf("begin: %v", err)
	}
	path := filepath.Join(dir, h.Name())
	if got := readEntry(t, path); got.Unit != e.Unit || len(got.Containers) != 1 || !got.Started.Equal(e.Started) {
		t.Fatalf("begun entry reads back as %+v", got)
	}

	e.Containers = append(e.Containers, Container{ID: "b", Name: "name-b", Action: Stopped, Order: 1})
	if err := h.Update(e); err != nil {
		t.Fatalf("update: %v", err)
	}
	got := readEntry(t, path)
	if len(got.Containers) != 2 || got.Containers[1] != e.Containers[1] {
		t.Fatalf("updated entry reads back as %+v", got)
	}
	if names := entries(t, dir); !slices.Equal(names, []string{h.Name()}) {
		t.Fatalf("journal holds %v after update, want only the entry", names)
	}

	// The replaced file is locked too.
	u := &fakeUndoer{}
	res, err := openTest(t, dir).Replay(t.Context(), connectTo(t, u, testHost, nil))
	if err != nil || len(res) != 0 || len(u.Calls()) != 0 {
		t.Fatalf("replay after update = %v, %v, calls %v; want the entry held", res, err, u.Calls())
	}

	if err := h.Done(); err != nil {
		t.Fatalf("done: %v", err)
	}
	if names := entries(t, dir); len(names) != 0 {
		t.Fatalf("journal holds %v after done", names)
	}
	if err := h.Done(); err != nil {
		t.Errorf("second done: %v", err)
	}
	if err := h.Update(e); err == nil {
		t.Error("update after done succeeded")
	}
}

func TestBeginCanceled(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := openTest(t, dir).Begin(ctx, stoppedEntry("container/x", "a")); !errors.Is(err, context.Canceled) {
		t.Fatalf("begin with a canceled context = %v", err)
	}
	if names := entries(t, dir); len(names) != 0 {
		t.Fatalf("journal holds %v", names)
	}
}

// TestLockFollowsReplacement checks the guard against a replay that opened
// an entry just before its owner replaced or removed it: the lock it then
// takes is on a file that is no longer the entry.
func TestLockFollowsReplacement(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	e := stoppedEntry("container/x", "a")
	h, err := j.Begin(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, h.Name())

	stale, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer stale.Close()
	if err := h.Update(e); err != nil {
		t.Fatal(err)
	}
	if st, err := lockAt(stale, path); st != replaced || err != nil {
		t.Fatalf("lock of a replaced entry = %v, %v; want replaced", st, err)
	}

	stale2, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer stale2.Close()
	if err := h.Done(); err != nil {
		t.Fatal(err)
	}
	if st, err := lockAt(stale2, path); st != gone || err != nil {
		t.Fatalf("lock of a removed entry = %v, %v; want gone", st, err)
	}
}

// TestConcurrentReplays has several replays race over the entries of a
// killed owner: each container is undone exactly once.
func TestConcurrentReplays(t *testing.T) {
	const nEntries, nReplays = 20, 4
	for round := range 3 {
		dir := t.TempDir()
		var es []Entry
		for i := range nEntries {
			es = append(es, stoppedEntry(fmt.Sprintf("container/c%d", i), fmt.Sprintf("r%d-e%d-a", round, i), fmt.Sprintf("r%d-e%d-b", round, i)))
		}
		startOwner(t, dir, es...).kill()

		u := &fakeUndoer{}
		var wg sync.WaitGroup
		results := make([][]Replayed, nReplays)
		for i := range nReplays {
			j := openTest(t, dir) // as another process would
			wg.Go(func() {
				got, err := j.Replay(t.Context(), connectTo(t, u, testHost, nil))
				if err != nil {
					t.Errorf("replay %d: %v", i, err)
				}
				results[i] = got
			})
		}
		wg.Wait()

		count := map[string]int{}
		for _, c := range u.Calls() {
			count[c.ID]++
		}
		for _, e := range es {
			for _, c := range e.Containers {
				if count[c.ID] != 1 {
					t.Errorf("round %d: container %s undone %d times, want once", round, c.ID, count[c.ID])
				}
			}
		}
		if n := len(u.Calls()); n != 2*nEntries {
			t.Errorf("round %d: %d undo calls, want %d", round, n, 2*nEntries)
		}
		units := 0
		for _, got := range results {
			for _, r := range got {
				if r.Err != nil {
					t.Errorf("round %d: replay of %s: %v", round, r.Unit, r.Err)
				}
				units++
			}
		}
		if units != nEntries {
			t.Errorf("round %d: %d entries reported replayed, want %d", round, units, nEntries)
		}
		if left := entries(t, dir); len(left) != 0 {
			t.Errorf("round %d: journal not emptied: %v", round, left)
		}
	}
}

func TestCorruptEntryMovedAside(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	good := writeDead(t, dir, stoppedEntry("container/good", "a"))
	full, _ := json.Marshal(stoppedEntry("container/bad", "x"))
	corrupt := map[string][]byte{
		"truncated-1-00.json": full[:len(full)/2],
		"empty-1-00.json":     nil,
		"garbage-1-00.json":   []byte("\x00\x01not json"),
		"array-1-00.json":     []byte("[]"),
	}
	for name, b := range corrupt {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	u := &fakeUndoer{}
	got, err := j.Replay(t.Context(), connectTo(t, u, testHost, nil))
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	if len(got) != 1 || got[0].Unit != "container/good" || got[0].Err != nil {
		t.Fatalf("replay = %+v, want only the good entry", got)
	}
	if c := u.Calls(); !slices.Equal(c, []call{{Op: "start", ID: "a"}}) {
		t.Errorf("calls %v, want start a only", c)
	}
	if _, err := os.Stat(filepath.Join(dir, good)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("good entry not removed: %v", err)
	}
	var want []string
	for name, b := range corrupt {
		want = append(want, name+".corrupt")
		if kept, err := os.ReadFile(filepath.Join(dir, name+".corrupt")); err != nil || string(kept) != string(b) {
			t.Errorf("%s not moved aside intact: %q, %v", name, kept, err)
		}
	}
	slices.Sort(want)
	if names := entries(t, dir); !slices.Equal(names, want) {
		t.Errorf("journal holds %v, want %v", names, want)
	}

	// Moved aside once: the next replay leaves them alone.
	got, err = j.Replay(t.Context(), connectTo(t, u, testHost, nil))
	if err != nil || len(got) != 0 {
		t.Fatalf("second replay = %v, %v", got, err)
	}
}

func TestReplayEmptyOrMissing(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	connect := func(context.Context, string) (Undoer, error) {
		t.Error("connect called with nothing to replay")
		return nil, errors.New("unexpected")
	}
	if got, err := j.Replay(t.Context(), connect); err != nil || got != nil {
		t.Fatalf("replay of an empty journal = %v, %v", got, err)
	}
	// An entry with nothing frozen yet needs no engine either.
	writeDead(t, dir, Entry{Unit: "container/x", EngineHost: testHost})
	if got, err := j.Replay(t.Context(), connect); err != nil || got != nil {
		t.Fatalf("replay of an entry without containers = %v, %v", got, err)
	}
	if names := entries(t, dir); len(names) != 0 {
		t.Fatalf("journal holds %v", names)
	}
	if err := os.Remove(dir); err != nil {
		t.Fatal(err)
	}
	if got, err := j.Replay(t.Context(), connect); err != nil || got != nil {
		t.Fatalf("replay of a missing journal = %v, %v", got, err)
	}
}

func TestReplayCanceled(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	writeDead(t, dir, stoppedEntry("container/x", "a"))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	u := &fakeUndoer{}
	if _, err := j.Replay(ctx, connectTo(t, u, testHost, nil)); !errors.Is(err, context.Canceled) {
		t.Fatalf("replay with a canceled context = %v", err)
	}
	if len(u.Calls()) != 0 || len(entries(t, dir)) != 1 {
		t.Fatalf("canceled replay acted: calls %v, journal %v", u.Calls(), entries(t, dir))
	}
}

func TestReplayRemovesStaleTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	stale := filepath.Join(dir, "container_x-1-00.json.11.tmp")
	fresh := filepath.Join(dir, "container_x-1-00.json.22.tmp")
	for _, p := range []string{stale, fresh} {
		if err := os.WriteFile(p, []byte("{"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	old := time.Now().Add(-2 * staleTemp)
	if err := os.Chtimes(stale, old, old); err != nil {
		t.Fatal(err)
	}
	if got, err := j.Replay(t.Context(), connectTo(t, &fakeUndoer{}, testHost, nil)); err != nil || len(got) != 0 {
		t.Fatalf("replay = %v, %v", got, err)
	}
	if names := entries(t, dir); !slices.Equal(names, []string{filepath.Base(fresh)}) {
		t.Fatalf("journal holds %v, want only the fresh temporary file", names)
	}
}

// TestReplayRemovesAbandonedLockedTemporaryFiles: a temporary file that
// was locked before it had a name is removed by the next replay as soon
// as no one holds it, with no minute to wait; one still held is left.
func TestReplayRemovesAbandonedLockedTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	abandoned, pa, err := flock.CreateTemp(dir, "container_x-1-00.json", []byte("{"))
	if err != nil {
		t.Fatal(err)
	}
	if err := abandoned.Close(); err != nil { // its writer died
		t.Fatal(err)
	}
	held, ph, err := flock.CreateTemp(dir, "container_y-1-00.json", []byte("{"))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	if !strings.HasSuffix(pa, flock.LockedTemp) {
		t.Fatalf("%s: this filesystem gave no O_TMPFILE, the case is not tested", pa)
	}
	if got, err := j.Replay(t.Context(), connectTo(t, &fakeUndoer{}, testHost, nil)); err != nil || len(got) != 0 {
		t.Fatalf("replay = %v, %v", got, err)
	}
	if names := entries(t, dir); !slices.Equal(names, []string{filepath.Base(ph)}) {
		t.Fatalf("journal holds %v, want only the held temporary file %s", names, filepath.Base(ph))
	}
}

// TestReplayWaitsOutStopsInProgress checks what replay asks the engine to
// wait for: a stop that was sent is waited out until its grace period
// (plus the margin) ends, one that was never sent is not waited for, and
// a paused container is thawed with the freeze's time.
func TestReplayWaitsOutStopsInProgress(t *testing.T) {
	dir := t.TempDir()
	j := openTest(t, dir)
	sent := time.Now().UTC().Truncate(time.Millisecond)
	e := stoppedEntry("compose/app", "sent", "unsent")
	e.Containers[0].StopSent, e.Containers[0].StopGraceMS = sent, 3000
	e.Containers = append(e.Containers, Container{ID: "paused", Action: Paused, Order: 5})
	writeDead(t, dir, e)
	if b, _ := json.Marshal(e.Containers[1]); strings.Contains(string(b), "stop_sent") {
		t.Errorf("a stop never sent is recorded: %s", b)
	}

	u := &fakeUndoer{}
	got, err := j.Replay(t.Context(), connectTo(t, u, testHost, nil))
	if err != nil || len(got) != 1 || got[0].Err != nil {
		t.Fatalf("replay = %+v, %v", got, err)
	}
	want := []call{
		{Op: "start", ID: "sent", At: sent.Add(3*time.Second + StopMargin)},
		{Op: "start", ID: "unsent"},
		{Op: "unpause", ID: "paused", At: e.Started},
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.calls) != len(want) {
		t.Fatalf("calls %v, want %v", u.calls, want)
	}
	for i, c := range u.calls {
		if c.Op != want[i].Op || c.ID != want[i].ID || !c.At.Equal(want[i].At) {
			t.Errorf("call %d = %+v, want %+v", i, c, want[i])
		}
	}
}
