package txn

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/flock"
)

// The durability and ownership design is the freeze journal's
// (internal/journal): an entry is written to a temporary file, flocked
// and fsynced, renamed into place (flock.Replace), then the directory is
// fsynced; the owner keeps the flock for as long as it lives, so a lock
// that can be taken means a dead owner. The writing is shared; the rest
// is repeated rather than shared, as the two journals record different
// things and evolve apart.

const (
	entrySuffix = ".json"
	// maxEntrySize bounds what decode reads: a garbage file must not make
	// every command read it whole.
	maxEntrySize = 1 << 20
)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return hex.EncodeToString(b)
}

// writeLocked writes e to a temporary file, fsyncs and locks it, and
// renames it to dir/name. The lock is taken before the rename, so the
// entry is never visible unlocked while its owner lives. The caller syncs
// the directory.
func writeLocked(dir, name string, e *Entry) (*os.File, error) {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode restore journal entry %s: %w", name, err)
	}
	b = append(b, '\n')
	f, err := flock.Replace(dir, name, b)
	if err != nil {
		return nil, fmt.Errorf("restore journal entry %s: %w", name, err)
	}
	return f, nil
}

// lockEntry opens and locks path. It returns the open file only when the
// lock was taken and path still names the locked file: an owner replaces
// or removes its entry while holding the lock, so a lock taken just
// afterwards may be on a file that is no longer the entry.
func lockEntry(path string) (*os.File, bool, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("open restore journal entry: %w", err)
	}
	ok, err := flock.TryLock(f)
	if err != nil || !ok {
		_ = f.Close()
		return nil, false, err
	}
	mine, err1 := f.Stat()
	now, err2 := os.Lstat(path)
	if err1 != nil || err2 != nil || !os.SameFile(mine, now) {
		_ = f.Close()
		return nil, false, nil
	}
	return f, true, nil
}

func decode(f *os.File) (*Entry, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxEntrySize {
		return nil, fmt.Errorf("%d bytes, more than an entry can be", fi.Size())
	}
	b := make([]byte, fi.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, err
	}
	var e Entry
	return &e, json.Unmarshal(b, &e)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
