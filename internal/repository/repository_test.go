package repository

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/secret"
	"github.com/lifeboat-backup/lifeboat/internal/source"
)

func newTestOptions(t *testing.T, pw string) Options {
	t.Helper()
	dir := t.TempDir()
	return Options{
		Location: filepath.Join(dir, "repo"),
		StateDir: filepath.Join(dir, "state"),
		Hostname: "testhost",
		Password: PasswordSource{Value: secret.New(pw)},
	}
}

func mustInit(t *testing.T, opts Options) *Repository {
	t.Helper()
	if _, err := Init(t.Context(), opts); err != nil {
		t.Fatalf("init: %v", err)
	}
	r, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

func snapshotDir(t *testing.T, r *Repository, unit, dir string) Point {
	t.Helper()
	c := progress.New()
	p, err := r.Snapshot(t.Context(), SnapshotOptions{Unit: unit, Kind: "volume", Trigger: "manual", Progress: c},
		func(ctx context.Context, up Uploader) (Labels, error) {
			data, err := source.Local(dir, "data")
			if err != nil {
				return Labels{}, err
			}
			now := time.Now()
			root := source.Dir("", now, source.Bytes("lifeboat.json", []byte(`{"format_version":1}`), 0o644, now),
				source.Dir("volumes", now, data))
			return Labels{Consistency: "none", DowntimeMS: 7}, up.Upload(ctx, root)
		})
	if err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	return p
}

func TestInitOpenErrors(t *testing.T) {
	opts := newTestOptions(t, "right-password")
	if _, err := Open(t.Context(), opts); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open before init: %v, want ErrNotFound", err)
	}
	mustInit(t, opts)
	if _, err := Init(t.Context(), opts); !errors.Is(err, ErrExists) {
		t.Fatalf("second init: %v, want ErrExists", err)
	}
	bad := opts
	bad.Password = PasswordSource{Value: secret.New("wrong-password")}
	bad.StateDir = filepath.Join(t.TempDir(), "other-state") // a fresh machine
	if _, err := Open(t.Context(), bad); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("open with wrong password: %v, want ErrWrongPassword", err)
	}
	bad.StateDir = opts.StateDir // a machine that already connected once
	if _, err := Open(t.Context(), bad); !errors.Is(err, ErrWrongPassword) {
		t.Fatalf("reopen with wrong password: %v, want ErrWrongPassword", err)
	}
	none := opts
	none.Password = PasswordSource{}
	if _, err := Open(t.Context(), none); !errors.Is(err, ErrNoPassword) {
		t.Fatalf("open without password: %v, want ErrNoPassword", err)
	}
}

func TestInitRefusesNonEmptyAndReadOnly(t *testing.T) {
	opts := newTestOptions(t, "pw")
	if err := os.MkdirAll(opts.Location, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(opts.Location, "precious"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Init(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "non-empty") {
		t.Fatalf("init into non-empty dir: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(opts.Location, "precious")); string(b) != "x" {
		t.Fatal("init touched an existing file")
	}
}

func TestGeneratedPassword(t *testing.T) {
	opts := newTestOptions(t, "")
	opts.Password = PasswordSource{Generate: true}
	res, err := Init(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if !res.PasswordGenerated || res.PasswordFile != opts.Location+".password" {
		t.Fatalf("result %+v", res)
	}
	st, err := os.Stat(res.PasswordFile)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("password file: %v %v", st, err)
	}
	// Later opens find the file beside the repository by themselves.
	opts.Password = PasswordSource{}
	r, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatalf("open with the generated password: %v", err)
	}
	r.Close(t.Context())
}

func TestSnapshotListResolveExtract(t *testing.T) {
	r := mustInit(t, newTestOptions(t, "pw"))
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a.txt"), []byte(strings.Repeat("hello ", 1000)), 0o640); err != nil {
		t.Fatal(err)
	}
	p1 := snapshotDir(t, r, "volume/one", src)
	if err := os.WriteFile(filepath.Join(src, "b.txt"), []byte("second"), 0o600); err != nil {
		t.Fatal(err)
	}
	p2 := snapshotDir(t, r, "volume/one", src)
	p3 := snapshotDir(t, r, "volume/two", src)
	if p1.Unit != "volume/one" || p1.Consistency != "none" || p1.DowntimeMS != 7 || p1.Host != "testhost" || p1.Files != 2 {
		t.Fatalf("point %+v", p1)
	}
	all, err := r.List(t.Context(), "")
	if err != nil || len(all) != 3 || all[0].ID != p3.ID {
		t.Fatalf("list: %v %+v", err, all)
	}
	one, _ := r.List(t.Context(), "volume/one")
	if len(one) != 2 || one[0].ID != p2.ID || one[1].ID != p1.ID {
		t.Fatalf("list volume/one: %+v", one)
	}
	for ref, want := range map[string]string{
		"volume/one@latest": p2.ID, p1.ID: p1.ID, p1.ID[:10]: p1.ID,
		"volume/one@" + p1.Time.Add(time.Millisecond).Format(time.RFC3339Nano): p1.ID,
	} {
		got, err := r.Resolve(t.Context(), ref)
		if err != nil || got.ID != want {
			t.Errorf("Resolve(%q) = %v, %v; want %s", ref, got.ID, err, want)
		}
	}
	for _, ref := range []string{"zzzz", "volume/nothing@latest", "volume/one@yesterday", ""} {
		if _, err := r.Resolve(t.Context(), ref); !errors.Is(err, ErrNoSuchPoint) {
			t.Errorf("Resolve(%q): %v, want ErrNoSuchPoint", ref, err)
		}
	}
	if _, err := r.Resolve(t.Context(), ""); err == nil {
		t.Error("empty ref resolved")
	}
	dst := t.TempDir()
	st, err := r.Extract(t.Context(), ExtractOptions{ID: p2.ID, Path: "volumes/data", Target: dst})
	if err != nil || st.Files != 2 {
		t.Fatalf("extract: %v %+v", err, st)
	}
	b, _ := os.ReadFile(filepath.Join(dst, "b.txt"))
	if string(b) != "second" {
		t.Fatalf("restored b.txt = %q", b)
	}
	if fi, _ := os.Stat(filepath.Join(dst, "a.txt")); fi == nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("a.txt mode: %v", fi)
	}
	if _, err := r.ReadFile(t.Context(), p2.ID, "nope.json"); !errors.Is(err, ErrNoSuchPath) {
		t.Fatalf("ReadFile missing: %v", err)
	}
	// A second extract into the same, now non-empty, directory overwrites nothing.
	if _, err := r.Extract(t.Context(), ExtractOptions{ID: p1.ID, Path: "volumes/data", Target: dst}); err == nil {
		t.Fatal("extract over existing files succeeded")
	}
}

func TestFailedCaptureSavesNothing(t *testing.T) {
	r := mustInit(t, newTestOptions(t, "pw"))
	_, err := r.Snapshot(t.Context(), SnapshotOptions{Unit: "volume/x", Kind: "volume"},
		func(ctx context.Context, up Uploader) (Labels, error) {
			if err := up.Upload(ctx, source.Dir("", time.Now(), source.Bytes("f", []byte("x"), 0o644, time.Now()))); err != nil {
				return Labels{}, err
			}
			return Labels{}, errors.New("quiesce failed")
		})
	if err == nil {
		t.Fatal("snapshot succeeded")
	}
	if ps, _ := r.List(t.Context(), ""); len(ps) != 0 {
		t.Fatalf("a failed capture left points: %+v", ps)
	}
}

// Two writers at once on one repository must both succeed; kopia's design
// allows it and lifeboat's first-connect lock must not get in the way.
func TestConcurrentWriters(t *testing.T) {
	opts := newTestOptions(t, "pw")
	mustInit(t, opts)
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		o := opts
		if i%2 == 1 {
			o.StateDir = filepath.Join(t.TempDir(), "other") // a second machine: connects at the same time
		}
		wg.Go(func() {
			r, err := Open(t.Context(), o)
			if err != nil {
				errs[i] = err
				return
			}
			defer r.Close(context.Background())
			_, errs[i] = r.Snapshot(t.Context(), SnapshotOptions{Unit: "volume/c", Kind: "volume"},
				func(ctx context.Context, up Uploader) (Labels, error) {
					d, _ := source.Local(src, "d")
					return Labels{Consistency: "none"}, up.Upload(ctx, source.Dir("", time.Now(), d))
				})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	}
	r, _ := Open(t.Context(), opts)
	defer r.Close(t.Context())
	if ps, _ := r.List(t.Context(), "volume/c"); len(ps) != 4 {
		t.Fatalf("want 4 points, got %d", len(ps))
	}
}

// TestResolveThisHostsPoints: in a repository two hosts share, UNIT@latest
// is this host's newest point; another host's is named HOST:UNIT@…; a host
// without points of the unit is told which hosts have some.
func TestResolveThisHostsPoints(t *testing.T) {
	opts := newTestOptions(t, "pw")
	a := mustInit(t, opts)
	other := opts
	other.Hostname, other.StateDir = "otherhost", filepath.Join(t.TempDir(), "state")
	b, err := Open(t.Context(), other)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close(context.Background()) })
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	mine := snapshotDir(t, a, "volume/data", src)
	theirs := snapshotDir(t, b, "volume/data", src) // newer, from the other host
	snapshotDir(t, b, "volume/only-there", src)
	// A new connection sees what the other host wrote, as a new command does.
	a, err = Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close(context.Background()) })
	if got, err := a.Resolve(t.Context(), "volume/data@latest"); err != nil || got.ID != mine.ID {
		t.Fatalf("this host's latest: %v %v, want %s", got.ID, err, mine.ID)
	}
	if got, err := a.Resolve(t.Context(), "otherhost:volume/data@latest"); err != nil || got.ID != theirs.ID {
		t.Fatalf("the other host's latest: %v %v, want %s", got.ID, err, theirs.ID)
	}
	if got, err := a.Resolve(t.Context(), theirs.ID); err != nil || got.ID != theirs.ID {
		t.Fatalf("an ID names one point whatever its host: %v %v", got.ID, err)
	}
	_, err = a.Resolve(t.Context(), "volume/only-there@latest")
	if !errors.Is(err, ErrNoSuchPoint) || !strings.Contains(err.Error(), "otherhost:volume/only-there@latest") {
		t.Fatalf("a unit only another host has: %v", err)
	}
	if _, err := a.Resolve(t.Context(), "nohost:volume/data@latest"); !errors.Is(err, ErrNoSuchPoint) || !strings.Contains(err.Error(), "host nohost") {
		t.Fatalf("a host with no points: %v", err)
	}
}
