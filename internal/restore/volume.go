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
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// ToVolume restores a volume of a restore point into a Docker volume: the
// one it came from, or opts.As. A missing volume is created like the
// original (driver, options, labels); an existing one must be empty unless
// opts.Force, and then its contents are replaced only once the restored copy
// is complete beside it.
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
		return res, fmt.Errorf("the engine at %s is remote; restoring volumes through the Engine API is not supported yet: run lifeboat on that host, or use --target DIR", eng.Host())
	}
	dst, created, err := targetVolume(ctx, eng, v.Volume, name)
	if err != nil {
		return res, err
	}
	empty, err := isEmptyDir(dst.Mountpoint)
	if err != nil {
		return res, err
	}
	metas := map[string]metaSpec{".": whole(v.Meta)}
	if empty {
		err = extract(ctx, repo, point.ID, v.Path, dst.Mountpoint, metas, opts.Progress, &res)
		if err != nil && created {
			err = errors.Join(err, eng.RemoveVolume(context.WithoutCancel(ctx), name))
		}
		return res, err
	}
	if !opts.Force {
		return res, fmt.Errorf("%w: volume %q already holds data: use --as NEW to restore beside it, or --force to replace its contents", ErrNotEmpty, name)
	}
	if err := checkUnused(ctx, eng, name); err != nil {
		return res, err
	}
	return res, replaceContents(ctx, dst.Mountpoint, func(stage string) error {
		return extract(ctx, repo, point.ID, v.Path, stage, metas, opts.Progress, &res)
	})
}

func targetVolume(ctx context.Context, eng *engine.Client, orig engine.Volume, name string) (engine.Volume, bool, error) {
	v, err := eng.Volume(ctx, name)
	if err == nil {
		return v, false, nil
	}
	if !errors.Is(err, engine.ErrNotFound) {
		return v, false, err
	}
	spec := orig
	spec.Name = name
	if spec.Driver != "" && spec.Driver != "local" {
		return v, false, fmt.Errorf("volume %q used driver %q; only local volumes can be restored into Docker so far: use --target DIR", orig.Name, spec.Driver)
	}
	v, err = eng.CreateVolume(ctx, spec)
	return v, err == nil, err
}

func checkUnused(ctx context.Context, eng *engine.Client, name string) error {
	users, err := eng.VolumeUsers(ctx, name)
	if err != nil {
		return err
	}
	for _, c := range users {
		if c.State == "running" || c.State == "paused" || c.State == "restarting" {
			return fmt.Errorf("volume %q is in use by running container %s: stop it first, or restore --as NEW", name, c.Name)
		}
	}
	return nil
}

// replaceContents restores into a staging directory beside dir, then swaps
// it in, so a failed restore leaves the old contents untouched.
func replaceContents(ctx context.Context, dir string, restoreInto func(stage string) error) error {
	if mounted, err := isMountPoint(dir); err != nil {
		return err
	} else if mounted {
		return fmt.Errorf("%s is a mount point and cannot be swapped: restore --as NEW, or empty it first", dir)
	}
	suffix := randomSuffix()
	stage := dir + ".lifeboat-restore-" + suffix
	old := dir + ".lifeboat-old-" + suffix
	if err := os.Mkdir(stage, 0o700); err != nil {
		return fmt.Errorf("create staging directory: %w", err)
	}
	if err := restoreInto(stage); err != nil {
		return errors.Join(err, os.RemoveAll(stage))
	}
	if err := os.Rename(dir, old); err != nil {
		return errors.Join(fmt.Errorf("move old contents aside: %w", err), os.RemoveAll(stage))
	}
	if err := os.Rename(stage, dir); err != nil {
		return errors.Join(fmt.Errorf("swap in restored contents: %w", err), os.Rename(old, dir))
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("remove replaced contents %s: %w", old, err)
	}
	return syncTree(filepath.Dir(dir))
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
