package restore

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/archive"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/helper"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore/txn"
)

// toRemoteVolume restores a volume on an engine whose host is not this
// one: the point's files are extracted here with their metadata into a
// staging directory, as a local restore writes them, then packed into a
// PAX archive that a helper container mounting the volume unpacks (PUT
// archive). The engine sets owners, modes, nanosecond times and xattrs
// (ACLs among them) from the headers; holes are filled.
//
// Only a volume the restore creates, or an empty one, is written: the
// engine cannot swap a volume's contents, so a killed restore is undone
// by removing the volume it created.
func toRemoteVolume(ctx context.Context, repo *repository.Repository, eng *engine.Client, opts Options, point repository.Point, v layout.Volume, name string, res *Result) error {
	_, found, err := existingVolume(ctx, eng, v.Volume, name)
	if err != nil {
		return err
	}
	if found {
		if err := checkUnused(ctx, eng, name); err != nil {
			return err
		}
		empty, err := remoteEmpty(ctx, eng, opts, helper.Spec{Volume: name, What: "volume " + name})
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("%w: volume %q on the remote engine %s already holds data, and a remote volume is only restored into when new or empty: use --as NEW", ErrNotEmpty, name, eng.Host())
		}
	}
	label := "volume " + name
	tx, err := begin(ctx, opts, txn.Entry{Unit: point.Unit, What: label, EngineHost: eng.Host()})
	if err != nil {
		return err
	}
	err = func() error {
		if !found {
			if _, err := createVolume(ctx, tx, eng, v.Volume, name); err != nil {
				return err
			}
		}
		stage, remove, err := stageDir(opts)
		if err != nil {
			return err
		}
		defer remove()
		if err := extract(ctx, repo, point.ID, v.Path, stage, map[string]metaSpec{".": whole(v.Meta)}, opts.Progress, res); err != nil {
			return err
		}
		return putRemote(ctx, eng, opts, helper.Spec{Volume: name, What: label}, stage)
	}()
	return conclude(ctx, tx, eng, opts.Log, err)
}

// stageDir is a fresh directory for one restore's files on this host;
// remove deletes it.
func stageDir(opts Options) (dir string, remove func(), err error) {
	if opts.StageDir == "" || opts.HelperDir == "" {
		return "", nil, errors.New("remote engine: staging and helper directories not set")
	}
	st, err := helper.NewStage(opts.StageDir, "restore")
	if err != nil {
		return "", nil, err
	}
	return st.Dir, func() { st.Remove() }, nil
}

// putRemote packs dir into the volume or host directory of spec through
// a helper container. spec.Image "" is any image the engine has.
func putRemote(ctx context.Context, eng *engine.Client, opts Options, spec helper.Spec, dir string) (err error) {
	if spec.Image == "" {
		if spec.Image, err = eng.HelperImage(ctx, ""); err != nil {
			return err
		}
	}
	h, err := helper.New(ctx, eng, opts.HelperDir, spec, opts.Log)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := h.Remove(ctx); rerr != nil && err == nil {
			err = rerr
		}
	}()
	pr, pw := io.Pipe()
	go func() {
		_, err := archive.Pack(dir, helper.MountDir, pw)
		pw.CloseWithError(err)
	}()
	// Names start with the mount's path and the archive unpacks at "/":
	// the engine then restores the setuid bit of hard-linked files, which
	// it loses when unpacking beneath a directory (it looks a link's
	// target up relative to "/").
	err = h.Put(ctx, pr)
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("%s: %w", spec.What, err)
	}
	failpoint.Hit("restore-remote-put")
	return nil
}

// remoteEmpty reports whether a volume or host directory of a remote
// engine holds nothing, asking the engine; a missing directory is empty.
func remoteEmpty(ctx context.Context, eng *engine.Client, opts Options, spec helper.Spec) (empty bool, err error) {
	if spec.Image, err = eng.HelperImage(ctx, spec.Volume); err != nil {
		return false, err
	}
	spec.ReadOnly = true
	h, err := helper.New(ctx, eng, opts.HelperDir, spec, opts.Log)
	if spec.Bind != "" && err != nil && strings.Contains(err.Error(), "does not exist") {
		return true, nil // the engine refuses to mount a missing bind source read-only
	}
	if err != nil {
		return false, err
	}
	defer func() {
		if rerr := h.Remove(ctx); rerr != nil && err == nil {
			err = rerr
		}
	}()
	rc, err := h.Archive(ctx, ".")
	if err != nil {
		return false, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for i := 0; ; i++ {
		_, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return true, nil
		}
		if err != nil {
			return false, fmt.Errorf("read %s: %w", spec.What, err)
		}
		if i == 1 { // the first entry is the volume's root
			return false, nil
		}
	}
}
