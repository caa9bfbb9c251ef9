package flock

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// A journal entry (the freeze journal's, the restore journal's) is
// written to a temporary file that is then renamed over the entry. A
// writer killed before the rename left that file behind, and as the file
// was created before it was locked, an unlocked one could be a live
// writer's in that instant: replays removed it only after a minute. The
// chaos test kills backups at many moments; one kill during a journal
// write's fsync left the journal not empty for every case in the minute
// that followed.
//
// Where the filesystem has O_TMPFILE, the file is therefore created
// without a name, locked, written and synced, and only then named
// (LockedTemp). Such a name is locked for as long as its writer lives, so
// an unlocked one is abandoned and can be removed at once. Elsewhere it
// is created by name (Temp), and only age tells an abandoned one.

// Suffixes of the temporary files CreateTemp names.
const (
	LockedTemp = ".ltmp" // locked before it had a name
	Temp       = ".tmp"  // named, then locked
)

// CreateTemp creates a file in dir named base, a random part and a
// suffix, locked (TryLock), holding b, synced. It returns the file and
// its path. The caller renames it into place, or removes it.
func CreateTemp(dir, base string, b []byte) (*os.File, string, error) {
	f, path, err := createUnnamed(dir, base, b)
	if !errors.Is(err, errNoTmpfile) {
		return f, path, err
	}
	path = filepath.Join(dir, base+"."+randomHex()+Temp)
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("create: %w", err)
	}
	if err := lockWriteSync(f, b); err != nil {
		_ = os.Remove(path)
		_ = f.Close()
		return nil, "", err
	}
	return f, path, nil
}

// Replace writes b to a new file (CreateTemp) and renames it over
// dir/name: the entry is never seen unlocked while its writer lives. It
// returns the file, still locked. The caller syncs dir.
func Replace(dir, name string, b []byte) (*os.File, error) {
	f, tmp, err := CreateTemp(dir, name, b)
	if err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		_ = os.Remove(tmp)
		_ = f.Close()
		return nil, fmt.Errorf("rename: %w", err)
	}
	return f, nil
}

// IsTemp reports whether name is one of CreateTemp's files.
func IsTemp(name string) bool {
	return strings.HasSuffix(name, Temp) || strings.HasSuffix(name, LockedTemp)
}

// TempSettled reports whether CreateTemp's file at path can be judged by
// its lock alone: one locked before it had a name always can; one named
// first only once older than age, as it may be a live writer's between
// its create and its lock. Whoever asks must not touch the lock of a
// fresh one: even a short-lived lock of theirs would make its writer
// fail.
func TempSettled(path string, age time.Duration) bool {
	if strings.HasSuffix(path, LockedTemp) {
		return true
	}
	fi, err := os.Lstat(path)
	return err == nil && time.Since(fi.ModTime()) >= age
}

var errNoTmpfile = errors.New("no O_TMPFILE here")

// createUnnamed is CreateTemp through O_TMPFILE; errNoTmpfile where the
// filesystem has none, or the file cannot be named.
func createUnnamed(dir, base string, b []byte) (*os.File, string, error) {
	fd, err := unix.Open(dir, unix.O_RDWR|unix.O_TMPFILE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return nil, "", errNoTmpfile
		}
		return nil, "", fmt.Errorf("create: %w", err)
	}
	f := os.NewFile(uintptr(fd), base)
	if err := lockWriteSync(f, b); err != nil {
		_ = f.Close()
		return nil, "", err
	}
	path := filepath.Join(dir, base+"."+randomHex()+LockedTemp)
	// Through /proc, which needs no capability, unlike AT_EMPTY_PATH.
	err = unix.Linkat(unix.AT_FDCWD, "/proc/self/fd/"+strconv.Itoa(fd), unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW)
	if err != nil {
		err = unix.Linkat(fd, "", unix.AT_FDCWD, path, unix.AT_EMPTY_PATH)
	}
	if err != nil {
		// No /proc and no capability for AT_EMPTY_PATH: the unnamed file
		// vanishes with its descriptor, and one is made by name instead.
		_ = f.Close()
		return nil, "", fmt.Errorf("%w: name it: %w", errNoTmpfile, err)
	}
	return f, path, nil
}

func lockWriteSync(f *os.File, b []byte) error {
	ok, err := TryLock(f)
	if err != nil {
		return fmt.Errorf("lock: %w", err)
	}
	if !ok {
		return errors.New("lock: held by another process")
	}
	if _, err := f.Write(b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

func randomHex() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b) // crypto/rand.Read never fails since Go 1.24
	return hex.EncodeToString(b)
}
