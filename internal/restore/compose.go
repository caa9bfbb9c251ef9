package restore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/restore/txn"
)

// maxComposeFile is what an existing file is read of to compare it; the
// point holds none larger (backup's limit).
const maxComposeFile = 1 << 20

// composeWrite is one project file the restore writes, or finds in place.
type composeWrite struct {
	f       layout.ComposeFile
	dst     string
	same    bool // dst holds the point's content already: left alone
	replace bool // dst differs and --force replaces it
}

// composeDst is where a project file goes: where it was, or with
// --compose-dir at the same place relative to the working directory in
// that directory (a file outside the working directory by its name).
func composeDst(c *layout.Compose, f layout.ComposeFile, dir string) string {
	if dir == "" {
		return f.Source
	}
	if c.WorkingDir != "" && strings.HasPrefix(f.Source, c.WorkingDir+"/") {
		return filepath.Join(dir, strings.TrimPrefix(f.Source, c.WorkingDir+"/"))
	}
	return filepath.Join(dir, filepath.Base(f.Source))
}

// planCompose decides what happens to each project file and lists what
// stands in the way: a different file where one goes (without --force),
// or something that is not a regular file (always).
func (u *unitRestore) planCompose() []string {
	u.compose = nil
	c := u.m.Compose
	if c == nil || len(c.Files) == 0 || u.opts.Container != "" {
		return nil
	}
	if u.opts.As != "" && u.opts.ComposeDir == "" {
		u.res.NotKept = append(u.res.NotKept, "compose files: not written for a copy, which must not touch the original's (give --compose-dir DIR)")
		return nil
	}
	var problems []string
	taken := map[string]string{}
	for _, f := range c.Files {
		w := composeWrite{f: f, dst: composeDst(c, f, u.opts.ComposeDir)}
		if other, ok := taken[w.dst]; ok {
			problems = append(problems, fmt.Sprintf("compose files %s and %s both go to %s in --compose-dir: restore this point's files with --path compose --target DIR instead", other, f.Source, w.dst))
			continue
		}
		taken[w.dst] = f.Source
		same, err := sameFile(w.dst, f.SHA256)
		switch {
		case beneath.IsNotExist(err):
		case errors.Is(err, beneath.ErrNotRegular):
			problems = append(problems, fmt.Sprintf("compose file %s exists and is not a regular file (move it away, or give --compose-dir DIR)", w.dst))
			continue
		case err != nil && !errors.Is(err, beneath.ErrTooLarge):
			return append(problems, fmt.Sprintf("compose file %s: %v", w.dst, err))
		case same:
			w.same = true
		case !u.opts.Force:
			problems = append(problems, fmt.Sprintf("compose file %s exists and differs from the restore point's (--force replaces it, --compose-dir DIR writes the point's elsewhere)", w.dst))
			continue
		default:
			w.replace = true
		}
		u.compose = append(u.compose, w)
	}
	return problems
}

// sameFile reports whether path is a regular file whose SHA-256 is sum.
func sameFile(path, sum string) (bool, error) {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return false, err
	}
	defer d.Close()
	f, err := beneath.ReadRegular(d, filepath.Base(path), maxComposeFile)
	if err != nil {
		return false, err
	}
	got := sha256.Sum256(f.Data)
	return hex.EncodeToString(got[:]) == sum, nil
}

// composeFiles writes the planned project files, each journalled: a new
// file (and the directories made for it) is removed by a rollback, a
// replaced one is swapped back.
func (u *unitRestore) composeFiles(ctx context.Context) error {
	for _, w := range u.compose {
		if w.same {
			continue
		}
		data, err := u.repo.ReadFile(ctx, u.point.ID, w.f.Path)
		if err != nil {
			return fmt.Errorf("compose file %s: %w", w.f.Source, err)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != w.f.SHA256 {
			return fmt.Errorf("compose file %s: the point's copy does not match its recorded checksum", w.f.Source)
		}
		if err := u.writeComposeFile(w, data); err != nil {
			return fmt.Errorf("compose file %s: %w", w.dst, err)
		}
		u.res.ComposeFiles = append(u.res.ComposeFiles, w.dst)
	}
	return nil
}

func (u *unitRestore) writeComposeFile(w composeWrite, data []byte) error {
	label := "compose file " + w.dst
	if !w.replace {
		if _, err := u.tx.Add(txn.Step{Kind: txn.MadeDir, Path: topMissing(w.dst), Label: label}); err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(w.dst), 0o755); err != nil {
			return fmt.Errorf("create directory: %w", err)
		}
		return writeNewFile(w.dst, data, w.f)
	}
	sfx := randomSuffix()
	s := txn.Step{Kind: txn.Swap, Path: w.dst, Stage: w.dst + ".lifeboat-restore-" + sfx, Old: w.dst + ".lifeboat-old-" + sfx, Label: label}
	if _, err := u.tx.Add(s); err != nil {
		return err
	}
	if err := writeNewFile(s.Stage, data, w.f); err != nil {
		return err
	}
	return placed{dir: w.dst, swap: &s}.swapIn()
}

// writeNewFile creates path, which must not exist (a file that appeared
// since the plan is not overwritten), with data, mode and owner, and
// flushes it and its directory.
func writeNewFile(path string, data []byte, f layout.ComposeFile) error {
	mode := os.FileMode(f.Mode & 0o777)
	if mode == 0 {
		mode = 0o600
	}
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	defer out.Close()
	if _, err := out.Write(data); err != nil {
		return err
	}
	failpoint.Hit("restore-compose-written")
	// Root restores the owner; anyone else keeps their own.
	if err := out.Chown(f.UID, f.GID); err != nil && !errors.Is(err, os.ErrPermission) {
		return err
	}
	if err := out.Chmod(mode); err != nil {
		return err
	}
	if err := out.Sync(); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// composePlan is the dry run's account of the project files.
func (u *unitRestore) composePlan() (create, replace []string) {
	for _, w := range u.compose {
		switch {
		case w.same:
		case w.replace:
			replace = append(replace, "compose file "+w.dst)
		default:
			create = append(create, "compose file "+w.dst)
		}
	}
	return create, replace
}

// syncDir flushes a directory, so that a name made in it lasts.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
