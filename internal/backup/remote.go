package backup

import (
	"archive/tar"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/archive"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/helper"
)

// remoteStage brings a remote engine's data to this host for each
// capture pass: every volume and bind mount through the archive endpoint
// of a helper container, every writable layer from the container's
// changes, extracted with their metadata into a staging directory. The
// pass then reads the staging directory exactly as the local path reads
// the engine's (through c.at), so the point's layout, sidecars and
// manifest are the local path's. It costs the data's size on this host's
// disk while the backup runs, and a write and a read of it; kopia skips
// unchanged files by their metadata as locally, but every pass moves the
// whole data set over the network.
type remoteStage struct {
	stage     *helper.Stage // this backup's staging area
	root      string
	helperDir string            // the helper journal
	dir       string            // the current pass's copy
	paths     map[string]string // engine path → staged copy
}

// newRemoteStage makes the staging area beneath dir.
func newRemoteStage(dir, helperDir string) (*remoteStage, error) {
	if dir == "" || helperDir == "" {
		return nil, fmt.Errorf("remote engine: staging and helper directories not set")
	}
	st, err := helper.NewStage(dir, "backup")
	if err != nil {
		return nil, err
	}
	return &remoteStage{stage: st, root: st.Dir, helperDir: helperDir}, nil
}

// remove deletes the staging area.
func (s *remoteStage) remove() error { return s.stage.Remove() }

// stage copies the unit's data as it is now, replacing the previous
// pass's copy, and points c.at at it.
func (c *capture) stage(ctx context.Context) error {
	s := c.remote
	if s.dir != "" {
		if err := os.RemoveAll(s.dir); err != nil {
			return fmt.Errorf("remove previous staged copy: %w", err)
		}
	}
	dir, err := os.MkdirTemp(s.root, "pass-")
	if err != nil {
		return fmt.Errorf("create staging directory: %w", err)
	}
	s.dir, s.paths = dir, map[string]string{}
	image, err := c.helperImage(ctx)
	if err != nil {
		return err
	}
	for i, v := range c.p.volumes {
		dst := filepath.Join(dir, "volume-"+strconv.Itoa(i))
		spec := helper.Spec{Image: image, Volume: v.Name, ReadOnly: true, What: "volume " + v.Name}
		if err := c.stageMount(ctx, spec, dst); err != nil {
			return err
		}
		s.paths[c.p.volDirs[v.Name]] = dst
	}
	for i, b := range c.p.binds {
		dst := filepath.Join(dir, "bind-"+strconv.Itoa(i))
		if err := c.stageMount(ctx, helper.Spec{Image: image, Bind: b, ReadOnly: true, What: "bind mount " + b}, dst); err != nil {
			return err
		}
		s.paths[b] = dst
	}
	for i, ct := range c.p.containers {
		layer := c.p.specs[ct.Name].WritableLayer
		if layer == "" {
			continue
		}
		dst := filepath.Join(dir, "layer-"+strconv.Itoa(i))
		if err := stageLayer(ctx, c.eng, ct, dst); err != nil {
			return fmt.Errorf("writable layer of %s: %w", ct.Name, err)
		}
		s.paths[layer] = dst
	}
	c.at = func(p string) string { return s.paths[p] }
	return nil
}

// helperImage is the unit's own image, or for a volume one the engine has.
func (c *capture) helperImage(ctx context.Context) (string, error) {
	for _, ct := range c.p.containers {
		if ct.ImageID != "" {
			return ct.ImageID, nil
		}
	}
	vol := ""
	if len(c.p.volumes) > 0 {
		vol = c.p.volumes[0].Name
	}
	return c.eng.HelperImage(ctx, vol)
}

// stageMount copies one volume or directory through a helper.
func (c *capture) stageMount(ctx context.Context, spec helper.Spec, dst string) (err error) {
	h, err := helper.New(ctx, c.eng, c.remote.helperDir, spec, c.opts.Log)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := h.Remove(ctx); rerr != nil && err == nil {
			err = rerr
		}
	}()
	rc, err := h.Archive(ctx, ".")
	if err != nil {
		return fmt.Errorf("%s: %w", spec.What, err)
	}
	defer rc.Close()
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	if _, err := archive.Extract(rc, dst); err != nil {
		return fmt.Errorf("%s: %w", spec.What, err)
	}
	return nil
}

// stageLayer rebuilds a container's writable layer as overlay2 keeps it
// (the layout the local path reads from the upper directory): added and
// changed paths with their metadata, a changed directory without the
// image's contents, and a deleted path as a whiteout (a 0/0 character
// device). A directory added whole comes in one archive.
func stageLayer(ctx context.Context, eng *engine.Client, ct engine.Container, dst string) error {
	changes, err := eng.LayerChanges(ctx, ct.ID)
	if err != nil {
		return err
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Path < changes[j].Path })
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	var x archive.Extractor
	covered := "" // an added directory already copied whole
	for _, ch := range changes {
		if covered != "" && strings.HasPrefix(ch.Path, covered+"/") || underMount(ct, ch.Path) {
			continue
		}
		if isMount(ct, ch.Path) {
			// The layer holds the mount point, the mount its contents.
			ch.Added = false
		}
		rel := strings.TrimPrefix(filepath.Clean(ch.Path), "/")
		if rel == "" || strings.HasPrefix(rel, "..") {
			continue
		}
		target := filepath.Join(dst, rel)
		if ch.Deleted {
			if err := whiteout(target); err != nil {
				return err
			}
			continue
		}
		whole, err := stageLayerPath(ctx, eng, ct.ID, ch, filepath.Dir(target), &x)
		if err != nil {
			return err
		}
		if whole {
			covered = filepath.Clean(ch.Path)
		}
	}
	return x.Finish()
}

// underMount reports whether path lies beneath one of the container's
// mounts: the engine lists a running container's changes through its
// mounts too, though they are not in its writable layer.
func underMount(ct engine.Container, path string) bool {
	for _, m := range ct.Mounts {
		if d := filepath.Clean(m.Destination); d != "/" && strings.HasPrefix(path, d+"/") {
			return true
		}
	}
	return false
}

func isMount(ct engine.Container, path string) bool {
	for _, m := range ct.Mounts {
		if filepath.Clean(m.Destination) == filepath.Clean(path) {
			return true
		}
	}
	return false
}

// stageLayerPath copies one changed path; it reports whether it was a
// directory copied whole (new in the layer: none of it is the image's).
func stageLayerPath(ctx context.Context, eng *engine.Client, id string, ch engine.Change, into string, x *archive.Extractor) (bool, error) {
	if err := os.MkdirAll(into, 0o755); err != nil {
		return false, err
	}
	rc, err := eng.ArchiveFrom(ctx, id, ch.Path)
	if err != nil {
		return false, err
	}
	// A changed directory's archive would hold the image's files too: its
	// own entry is all the layer has of it. Closing the stream early
	// stops the engine's packing.
	defer rc.Close()
	first, err := x.Extract(rc, into, !ch.Added)
	if err != nil {
		return false, fmt.Errorf("%s: %w", ch.Path, err)
	}
	return ch.Added && first != nil && first.Typeflag == tar.TypeDir, nil
}

func whiteout(p string) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
		return fmt.Errorf("whiteout %s: %w", p, err)
	}
	return nil
}
