package repository

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/secret"
)

// TestOpenLeasesBesideTheRepository: the lease store opened without the
// password holds the same records as the open repository's, and is
// refused where no repository is (a mistyped path gets no lease files)
// and for a view of the past.
func TestOpenLeasesBesideTheRepository(t *testing.T) {
	opts := newTestOptions(t, "pw")
	if _, _, err := OpenLeases(t.Context(), opts); err == nil {
		t.Fatal("a lease store where no repository is")
	}
	r := mustInit(t, opts)
	noPassword := opts
	noPassword.Password = PasswordSource{}
	st, closeSt, err := OpenLeases(t.Context(), noPassword)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSt()
	if err := st.Put(t.Context(), "lifeboat-lease-x", []byte("rec")); err != nil {
		t.Fatal(err)
	}
	via, err := r.Leases()
	if err != nil {
		t.Fatal(err)
	}
	if b, err := via.Get(t.Context(), "lifeboat-lease-x"); err != nil || string(b) != "rec" {
		t.Fatalf("the repository's store reads %q, %v", b, err)
	}
	if err := via.Delete(t.Context(), "lifeboat-lease-x"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Get(t.Context(), "lifeboat-lease-x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("deleted through one store, read through the other: %v", err)
	}

	empty := t.TempDir()
	typo := opts
	typo.Location = empty
	if _, _, err := OpenLeases(t.Context(), typo); err == nil {
		t.Fatal("a lease store in a directory that holds no repository")
	}
	if entries, _ := os.ReadDir(empty); len(entries) != 0 {
		t.Fatalf("wrote into a directory that holds no repository: %v", entries)
	}
	past := opts
	past.PointInTime = time.Now()
	if _, _, err := OpenLeases(t.Context(), past); !errors.Is(err, ErrPointInTime) {
		t.Fatalf("a view of the past: %v", err)
	}
}

// TestMayPrompt: only a repository with no password given, none beside
// it, and a terminal to ask on may prompt.
func TestMayPrompt(t *testing.T) {
	dir := t.TempDir()
	ask := func(bool) (secret.Value, error) { return secret.Value{}, ErrNoPassword }
	repo := filepath.Join(dir, "repo")
	for _, c := range []struct {
		name string
		o    Options
		want bool
	}{
		{"value", Options{Location: repo, Password: PasswordSource{Value: secret.New("x"), Prompt: ask}}, false},
		{"file", Options{Location: repo, Password: PasswordSource{File: "/f", Prompt: ask}}, false},
		{"no prompt", Options{Location: repo}, false},
		{"nothing given", Options{Location: repo, Password: PasswordSource{Prompt: ask}}, true},
	} {
		if got := c.o.MayPrompt(); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if err := os.WriteFile(PasswordFileFor(repo), []byte("pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if (Options{Location: repo, Password: PasswordSource{Prompt: ask}}).MayPrompt() {
		t.Error("a password file beside the repository, and it may prompt")
	}
}
