package restore

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/archive"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/helper"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// fillVolume restores d into a volume: at its data directory on this
// host, or through a helper on a remote engine.
func (u *unitRestore) fillVolume(ctx context.Context, vol engine.Volume, label string, d layout.Data) error {
	if !u.eng.IsLocal() {
		return u.fillRemote(ctx, helper.Spec{Volume: vol.Name, What: label}, d)
	}
	dir, err := vol.DataDir()
	if err != nil {
		return err
	}
	return u.fill(ctx, dir, label, d)
}

// volumeEmpty reports whether an existing volume holds nothing: at its
// data directory here, or asking a remote engine.
func (u *unitRestore) volumeEmpty(ctx context.Context, vol engine.Volume) (bool, error) {
	if !u.eng.IsLocal() {
		return remoteEmpty(ctx, u.eng, u.opts, helper.Spec{Volume: vol.Name, What: "volume " + vol.Name})
	}
	dir, err := vol.DataDir()
	if err != nil {
		return false, err
	}
	return isEmptyDir(dir)
}

// fillRemote restores d into a remote engine's volume or host directory,
// which must be new or empty: the engine cannot swap contents aside, so
// a killed restore is undone by removing what it created.
func (u *unitRestore) fillRemote(ctx context.Context, spec helper.Spec, d layout.Data) error {
	{
		empty, err := remoteEmpty(ctx, u.eng, u.opts, spec)
		if err != nil {
			return err
		}
		if !empty {
			return fmt.Errorf("%w: %s on the remote engine %s already holds data, and remote data is only restored into when new or empty: use --as NEW", ErrNotEmpty, spec.What, u.eng.Host())
		}
	}
	stage, remove, err := stageDir(u.opts)
	if err != nil {
		return err
	}
	defer remove()
	var r Result
	err = extract(ctx, u.repo, u.point.ID, d.Path, stage, map[string]metaSpec{".": whole(d.Meta)}, u.opts.Progress, &r)
	u.res.NotKept = append(u.res.NotKept, prefixed(d.Path, r.NotKept)...)
	if err != nil {
		return err
	}
	return putRemote(ctx, u.eng, u.opts, spec, stage)
}

// remoteLayer restores a writable layer into a container created on a
// remote engine, through its own archive endpoint (a created container's
// root is mounted for it): files and directories unpack at "/", so the
// engine's overlay copies them up. A deleted path is removed by an entry
// of its own that the engine's unpacking removes before it fails to make
// a 0/0 device (which overlayfs records as a whiteout); each is then
// checked. Mount points are left to their mounts.
func (u *unitRestore) remoteLayer(ctx context.Context, id, name string, l *layout.Data) error {
	stage, remove, err := stageDir(u.opts)
	if err != nil {
		return err
	}
	defer remove()
	var r Result
	eo := repository.ExtractOptions{ID: u.point.ID, Path: l.Path, Target: stage, Progress: u.opts.Progress}
	if err := extractInto(ctx, u.repo, eo, map[string]metaSpec{".": whole(l.Meta)}, &r); err != nil {
		return fmt.Errorf("writable layer of %s: %w", name, err)
	}
	u.res.NotKept = append(u.res.NotKept, prefixed(l.Path, r.NotKept)...)
	ct, err := u.eng.Container(ctx, id)
	if err != nil {
		return err
	}
	skip := func(rel string) bool { return mountedAt(ct, "/"+rel) }
	// Deletions first: removing a path changes its directory's time,
	// which the layer's own entry for the directory then sets.
	deleted, _, err := archive.PackLayer(stage, io.Discard, skip)
	if err != nil {
		return err
	}
	for _, rel := range deleted {
		if err := u.remoteDelete(ctx, id, "/"+rel); err != nil {
			u.res.NotKept = append(u.res.NotKept, l.Path+"/"+rel+": deleted in the container, but "+err.Error())
		}
	}
	pr, pw := io.Pipe()
	go func() {
		_, _, err := archive.PackLayer(stage, pw, skip)
		pw.CloseWithError(err)
	}()
	err = u.eng.ArchiveTo(ctx, id, "/", pr)
	pr.CloseWithError(err)
	if err != nil {
		return fmt.Errorf("writable layer of %s: %w", name, err)
	}
	return nil
}

// remoteDelete removes path from a created container's root through the
// archive endpoint, and checks that it is gone.
func (u *unitRestore) remoteDelete(ctx context.Context, id, p string) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: strings.TrimPrefix(p, "/"), Typeflag: tar.TypeChar, Format: tar.FormatPAX}); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	_ = u.eng.ArchiveTo(ctx, id, "/", &buf) // fails making the device, by design
	there, err := u.eng.PathExists(ctx, id, p)
	if err != nil {
		return err
	}
	if there {
		return fmt.Errorf("the engine did not remove %s", p)
	}
	return nil
}

// mountedAt reports whether p is a mount point of ct or lies beneath one.
func mountedAt(ct engine.Container, p string) bool {
	p = path.Clean(p)
	for _, m := range ct.Mounts {
		d := path.Clean(m.Destination)
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
