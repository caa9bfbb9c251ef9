package restore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore/txn"
)

// ToVolume restores a volume of a restore point into a Docker volume: the
// one it came from, or opts.As. A missing volume is created like the
// original (driver, options, labels); an existing one must be empty unless
// opts.Force, and then its contents are replaced only once the restored copy
// is complete beside it. A volume a running container uses is refused,
// empty or not: the container would see a half-restored tree, or race it.
func ToVolume(ctx context.Context, repo *repository.Repository, eng *engine.Client, opts Options) (Result, error) {
	point, m, err := load(ctx, repo, opts.Ref)
	if err != nil {
		return Result{}, err
	}
	v, err := m.FindVolume(opts.Volume)
	if err != nil {
		return Result{}, err
	}
	name := v.Name
	if opts.As != "" {
		name = opts.As
	}
	res := Result{ID: point.ID, Unit: point.Unit, Volume: name}
	if !eng.IsLocal() {
		return res, toRemoteVolume(ctx, repo, eng, opts, point, *v, name, &res)
	}
	have, found, err := existingVolume(ctx, eng, v.Volume, name)
	if err != nil {
		return res, err
	}
	if found {
		if err := checkUnused(ctx, eng, name); err != nil {
			return res, err
		}
		dir, err := have.DataDir()
		if err != nil {
			return res, err
		}
		if empty, err := isEmptyDir(dir); err != nil {
			return res, err
		} else if !empty && !opts.Force {
			return res, fmt.Errorf("%w: volume %q already holds data: use --as NEW to restore beside it, or --force to replace its contents", ErrNotEmpty, name)
		}
	}
	label := "volume " + name
	tx, err := begin(ctx, opts, txn.Entry{Unit: point.Unit, What: label, EngineHost: eng.Host(), SwapCommits: true})
	if err != nil {
		return res, err
	}
	err = func() error {
		if !found {
			if have, err = createVolume(ctx, tx, eng, v.Volume, name); err != nil {
				return err
			}
		}
		// Where the files are: a bind-type volume's device directory,
		// which the engine mounts only while a container uses it.
		dir, err := have.DataDir()
		if err != nil {
			return err
		}
		if err := eng.CheckHostPath(ctx, dir); err != nil {
			return fmt.Errorf("restore %s: %w", label, err)
		}
		p, err := place(tx, dir, label)
		if err != nil {
			return err
		}
		if err := extract(ctx, repo, point.ID, v.Path, p.into, map[string]metaSpec{".": whole(v.Meta)}, opts.Progress, &res); err != nil {
			return err
		}
		return p.swapIn()
	}()
	return res, conclude(ctx, tx, eng, opts.Log, err)
}

// existingVolume looks volume name up; when it is missing, it checks that
// it can be created like orig.
func existingVolume(ctx context.Context, eng *engine.Client, orig engine.Volume, name string) (engine.Volume, bool, error) {
	v, err := eng.Volume(ctx, name)
	if err == nil {
		return v, true, nil
	}
	if !errors.Is(err, engine.ErrNotFound) {
		return v, false, err
	}
	if orig.Driver != "" && orig.Driver != "local" {
		return v, false, fmt.Errorf("volume %q used driver %q; only local volumes can be restored into Docker so far: use --target DIR", orig.Name, orig.Driver)
	}
	return v, false, nil
}

// createVolume creates volume name like orig, journalled.
func createVolume(ctx context.Context, tx *txn.Tx, eng *engine.Client, orig engine.Volume, name string) (engine.Volume, error) {
	spec := orig
	spec.Name = name
	if _, err := tx.Add(txn.Step{Kind: txn.MadeVolume, Name: name, Label: "volume " + name}); err != nil {
		return engine.Volume{}, err
	}
	v, err := eng.CreateVolume(ctx, spec)
	if err != nil {
		return v, err
	}
	failpoint.Hit("restore-volume-made")
	return v, nil
}

func checkUnused(ctx context.Context, eng *engine.Client, name string) error {
	users, err := eng.VolumeUsers(ctx, name)
	if err != nil {
		return err
	}
	for _, c := range users {
		if running(c.State) {
			return fmt.Errorf("%w: volume %q is in use by running container %s: stop it first, or restore --as NEW", ErrConflict, name, c.Name)
		}
	}
	return nil
}

func running(state string) bool {
	return state == "running" || state == "paused" || state == "restarting"
}

func isEmptyDir(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, fmt.Errorf("open %s: %w", dir, err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) > 0 {
		return false, nil
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("read %s: %w", dir, err)
	}
	return true, nil
}

func isMountPoint(dir string) (bool, error) {
	var a, b unix.Stat_t
	if err := unix.Lstat(dir, &a); err != nil {
		return false, fmt.Errorf("stat %s: %w", dir, err)
	}
	if err := unix.Lstat(filepath.Dir(dir), &b); err != nil {
		return false, fmt.Errorf("stat %s: %w", filepath.Dir(dir), err)
	}
	return a.Dev != b.Dev, nil
}

func randomSuffix() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
