package txn

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// fakeEngine is a Docker Engine of containers (by ID), volumes and
// networks, recording the calls that change something.
type fakeEngine struct {
	containers map[string]*engine.Container
	volumes    map[string]bool
	networks   map[string]bool
	calls      []string
	failRename error
}

func newFakeEngine() *fakeEngine {
	return &fakeEngine{containers: map[string]*engine.Container{}, volumes: map[string]bool{}, networks: map[string]bool{}}
}

func (f *fakeEngine) Container(_ context.Context, ref string) (engine.Container, error) {
	for id, c := range f.containers {
		if id == ref || c.Name == ref {
			return *c, nil
		}
	}
	return engine.Container{}, fmt.Errorf("container %q %w", ref, engine.ErrNotFound)
}

func (f *fakeEngine) RenameContainer(_ context.Context, id, name string) error {
	f.calls = append(f.calls, "rename "+id+" "+name)
	if f.failRename != nil {
		return f.failRename
	}
	f.containers[id].Name = name
	return nil
}

func (f *fakeEngine) Start(_ context.Context, id string) error {
	f.calls = append(f.calls, "start "+id)
	f.containers[id].State = "running"
	return nil
}

func (f *fakeEngine) RemoveContainer(_ context.Context, id string, _ bool) error {
	f.calls = append(f.calls, "rm "+id)
	delete(f.containers, id)
	return nil
}

func (f *fakeEngine) RemoveWithVolumes(ctx context.Context, id string) error {
	return f.RemoveContainer(ctx, id, true)
}

func (f *fakeEngine) Volume(_ context.Context, name string) (engine.Volume, error) {
	if !f.volumes[name] {
		return engine.Volume{}, fmt.Errorf("volume %q %w", name, engine.ErrNotFound)
	}
	return engine.Volume{Name: name}, nil
}

func (f *fakeEngine) RemoveVolume(_ context.Context, name string) error {
	f.calls = append(f.calls, "rm volume "+name)
	delete(f.volumes, name)
	return nil
}

func (f *fakeEngine) Network(_ context.Context, name string) (engine.NetworkSpec, error) {
	if !f.networks[name] {
		return engine.NetworkSpec{}, fmt.Errorf("network %q %w", name, engine.ErrNotFound)
	}
	return engine.NetworkSpec{Name: name}, nil
}

func (f *fakeEngine) RemoveNetwork(_ context.Context, name string) error {
	f.calls = append(f.calls, "rm network "+name)
	delete(f.networks, name)
	return nil
}

func mustOpen(t *testing.T) *Journal {
	t.Helper()
	j, err := Open(filepath.Join(t.TempDir(), "restores"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func mustWrite(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// siblings lists what is beside dir: staging and old directories left
// behind show up here.
func siblings(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// replayDead replays j as the next command would after the owner died.
func replayDead(t *testing.T, j *Journal, eng Engine) []Replayed {
	t.Helper()
	rs, err := j.Replay(t.Context(), func(context.Context, string) (Engine, error) { return eng, nil })
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func entries(t *testing.T, j *Journal) []string {
	t.Helper()
	des, _ := os.ReadDir(j.dir)
	var out []string
	for _, de := range des {
		out = append(out, de.Name())
	}
	return out
}

// TestSwapKilledAnywhere kills a swap at each of its moments: before the
// commit it is undone (old contents back), after it finished; either way
// nothing is left beside the directory.
func TestSwapKilledAnywhere(t *testing.T) {
	for _, tc := range []struct {
		moment      string
		swapCommits bool
		want        string // contents after the replay
		finished    bool
	}{
		{"intent only", true, "old", false},
		{"staged", true, "old", false},
		{"half swapped", true, "old", false},
		{"swapped, volume restore", true, "new", true},
		{"swapped, unit restore", false, "old", false},
		{"committed", false, "new", true},
	} {
		t.Run(tc.moment, func(t *testing.T) {
			j := mustOpen(t)
			dir := filepath.Join(t.TempDir(), "vol", "_data")
			mustWrite(t, filepath.Join(dir, "f"), "old")
			tx, err := j.Begin(t.Context(), Entry{Unit: "volume/v", What: "volume v", SwapCommits: tc.swapCommits})
			if err != nil {
				t.Fatal(err)
			}
			s := Step{Kind: Swap, Path: dir, Stage: dir + ".lifeboat-restore-1", Old: dir + ".lifeboat-old-1", Label: "volume v"}
			if _, err := tx.Add(s); err != nil {
				t.Fatal(err)
			}
			steps := map[string]int{"intent only": 0, "staged": 1, "half swapped": 2}
			n, ok := steps[tc.moment]
			if !ok {
				n = 3
			}
			if n >= 1 {
				mustWrite(t, filepath.Join(s.Stage, "f"), "new")
			}
			if n >= 2 {
				if err := os.Rename(dir, s.Old); err != nil {
					t.Fatal(err)
				}
			}
			if n >= 3 {
				if err := os.Rename(s.Stage, dir); err != nil {
					t.Fatal(err)
				}
			}
			if tc.moment == "committed" {
				if err := tx.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			if got := replayDead(t, j, nil); len(got) != 0 {
				t.Fatalf("replayed an entry whose owner lives: %+v", got)
			}
			tx.Close() // the owner dies
			rs := replayDead(t, j, nil)
			if len(rs) != 1 || rs[0].Err != nil || rs[0].Finished != tc.finished {
				t.Fatalf("replay: %+v", rs)
			}
			if got := readFile(t, filepath.Join(dir, "f")); got != tc.want {
				t.Errorf("contents %q after the replay, want %q (%s)", got, tc.want, rs[0].Message())
			}
			if got := siblings(t, dir); !slices.Equal(got, []string{"_data"}) {
				t.Errorf("left beside the volume: %v", got)
			}
			if got := entries(t, j); len(got) != 0 {
				t.Errorf("journal not emptied: %v", got)
			}
		})
	}
}

func TestFilledAndMadeDirsUndone(t *testing.T) {
	j := mustOpen(t)
	root := t.TempDir()
	empty := filepath.Join(root, "empty")
	if err := os.Mkdir(empty, 0o750); err != nil {
		t.Fatal(err)
	}
	made := filepath.Join(root, "a")
	tx, err := j.Begin(t.Context(), Entry{Unit: "volume/v", What: "directory"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Step{{Kind: FilledDir, Path: empty, Mode: 0o750, UID: os.Getuid(), GID: os.Getgid()}, {Kind: MadeDir, Path: made}} {
		if _, err := tx.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	mustWrite(t, filepath.Join(empty, "sub", "f"), "partial")
	if err := os.Chmod(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(made, "b", "f"), "partial")
	tx.Close()
	rs := replayDead(t, j, nil)
	if len(rs) != 1 || rs[0].Err != nil || rs[0].Finished {
		t.Fatalf("replay: %+v", rs)
	}
	if names, _ := readNames(empty); len(names) != 0 {
		t.Errorf("the empty directory is not empty again: %v", names)
	}
	if fi, err := os.Stat(empty); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("mode not given back: %v %v", fi.Mode(), err)
	}
	if exists(made) {
		t.Error("the directory the restore made is still there")
	}
	if !strings.Contains(rs[0].Message(), "rolled back an interrupted restore of volume/v") {
		t.Errorf("message %q", rs[0].Message())
	}
}

// TestUnitUndone rolls back a unit restore killed after its new
// containers were created: they go, the originals come back under their
// names and run again, created volumes and networks go, and an original
// is never taken for a new container.
func TestUnitUndone(t *testing.T) {
	j := mustOpen(t)
	eng := newFakeEngine()
	eng.containers["old1"] = &engine.Container{ID: "old1", Name: "shop_db_1-lifeboat-old-x", State: "exited"}
	eng.containers["old2"] = &engine.Container{ID: "old2", Name: "shop_web_1-lifeboat-old-x", State: "exited"}
	eng.containers["new1"] = &engine.Container{ID: "new1", Name: "shop_db_1", State: "running"}
	eng.containers["new2"] = &engine.Container{ID: "new2", Name: "shop_web_1", State: "created"}
	eng.volumes["shop_new"], eng.networks["shop_net"] = true, true
	tx, err := j.Begin(t.Context(), Entry{Unit: "project/shop", What: "in place", EngineHost: "unix:///x"})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []Step{
		{Kind: Aside, ID: "old1", Name: "shop_db_1", Tmp: "shop_db_1-lifeboat-old-x", Running: true},
		{Kind: Aside, ID: "old2", Name: "shop_web_1", Tmp: "shop_web_1-lifeboat-old-x", Running: false},
		{Kind: MadeNetwork, Name: "shop_net"},
		{Kind: MadeVolume, Name: "shop_new"},
		{Kind: MadeContainer, Name: "shop_db_1", ID: "new1"},
		{Kind: MadeContainer, Name: "shop_web_1"}, // killed before its ID was recorded
	} {
		if _, err := tx.Add(s); err != nil {
			t.Fatal(err)
		}
	}
	tx.Close()
	rs := replayDead(t, j, eng)
	if len(rs) != 1 || rs[0].Err != nil {
		t.Fatalf("replay: %+v", rs)
	}
	want := []string{"rm new2", "rm new1", "rm volume shop_new", "rm network shop_net",
		"rename old2 shop_web_1", "rename old1 shop_db_1", "start old1"}
	if !slices.Equal(eng.calls, want) {
		t.Errorf("calls %q, want %q", eng.calls, want)
	}
	if eng.containers["old1"].State != "running" || eng.containers["old2"].State != "exited" {
		t.Errorf("originals not in their state: %+v %+v", eng.containers["old1"], eng.containers["old2"])
	}
	if msg := rs[0].Message(); !strings.Contains(msg, "rolled back an interrupted restore of project/shop (in place): removed container shop_web_1") {
		t.Errorf("message %q", msg)
	}
}

// TestUnitFinishedAndRetried finishes a committed unit restore, and keeps
// only the steps that failed for the next replay.
func TestUnitFinishedAndRetried(t *testing.T) {
	j := mustOpen(t)
	eng := newFakeEngine()
	eng.containers["old1"] = &engine.Container{ID: "old1", Name: "db-lifeboat-old-x", State: "exited"}
	dir := filepath.Join(t.TempDir(), "_data")
	mustWrite(t, filepath.Join(dir, "f"), "new")
	mustWrite(t, filepath.Join(dir+".lifeboat-old-1", "f"), "old")
	tx, err := j.Begin(t.Context(), Entry{Unit: "container/db", EngineHost: "unix:///x"})
	if err != nil {
		t.Fatal(err)
	}
	tx.Add(Step{Kind: Aside, ID: "old1", Name: "db", Tmp: "db-lifeboat-old-x", Running: true})
	tx.Add(Step{Kind: Swap, Path: dir, Stage: dir + ".lifeboat-restore-1", Old: dir + ".lifeboat-old-1"})
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	tx.Close()
	var dead int
	rs, err := j.Replay(t.Context(), func(context.Context, string) (Engine, error) {
		dead++
		return nil, errors.New("engine down")
	})
	if err != nil || len(rs) != 1 || rs[0].Err == nil || !rs[0].Finished || dead != 1 {
		t.Fatalf("replay with the engine down: %+v, %v", rs, err)
	}
	if exists(dir + ".lifeboat-old-1") {
		t.Error("the replaced data was not removed although that needs no engine")
	}
	rs = replayDead(t, j, eng)
	if len(rs) != 1 || rs[0].Err != nil || !rs[0].Finished {
		t.Fatalf("second replay: %+v", rs)
	}
	if !slices.Equal(eng.calls, []string{"rm old1"}) {
		t.Errorf("calls %q", eng.calls)
	}
	if got := readFile(t, filepath.Join(dir, "f")); got != "new" {
		t.Errorf("contents %q after finishing", got)
	}
	if got := entries(t, j); len(got) != 0 {
		t.Errorf("journal not emptied: %v", got)
	}
}

// TestRollbackInProcess is what a failed restore does itself: it undoes
// what it did and leaves no entry.
func TestRollbackInProcess(t *testing.T) {
	j := mustOpen(t)
	eng := newFakeEngine()
	eng.volumes["v"] = true
	tx, err := j.Begin(t.Context(), Entry{Unit: "volume/v"})
	if err != nil {
		t.Fatal(err)
	}
	tx.Add(Step{Kind: MadeVolume, Name: "v"})
	did, err := tx.Rollback(t.Context(), eng)
	if err != nil || !slices.Equal(did, []string{"removed volume v"}) || eng.volumes["v"] {
		t.Fatalf("rollback: %q %v", did, err)
	}
	if got := entries(t, j); len(got) != 0 {
		t.Errorf("journal not emptied: %v", got)
	}
	if _, err := tx.Add(Step{Kind: MadeVolume, Name: "w"}); err == nil {
		t.Error("a settled entry took another step")
	}
}
