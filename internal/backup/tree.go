package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"path"
	"path/filepath"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/btrfs"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/source"
)

// scanJob is one tree of files to scan for its sidecar.
type scanJob struct {
	path, dir string
	skip      func(string, bool) bool
	data      layout.Data
	meta      []byte
	// fed: the frozen pass's capture feeds its scanner, done once the
	// capture is; nil: the scan walks the tree itself.
	fed *pendingDir
	// listed, when the scan walks a tree read live, keeps its listing for
	// kopia's walk (source.Live).
	listed *source.Listings
}

// treeParts are the sections of a restore point's tree as they are
// gathered, with the scan jobs of their sidecars.
type treeParts struct {
	ctx  context.Context
	c    *capture
	now  time.Time
	skip func(string, bool) bool
	jobs []*scanJob

	volumes, binds, containers, images, dumps, compose []source.Entry
	volJobs, bindJobs, layerJobs                       []*scanJob
	items                                              []layout.Container
	composeInfo                                        *layout.Compose
}

// add puts a directory of the host in section, and its sidecar's scan in
// the jobs.
func (t *treeParts) add(section *[]source.Entry, path, name, dir string, skip func(string, bool) bool) (*scanJob, error) {
	j := &scanJob{path: path, dir: dir, skip: skip}
	e, err := t.c.dirEntry(t.ctx, j, name)
	if err != nil {
		return nil, err
	}
	*section = append(*section, e)
	t.jobs = append(t.jobs, j)
	return j, nil
}

// streams are the dumps, read from exec as the walk reaches them, and the
// images saved by the engine.
func (t *treeParts) streams(ctx context.Context) {
	c := t.c
	for _, d := range c.p.dumps {
		var files []source.Entry
		for _, cmd := range d.cmds {
			out := c.measured(d.container.Name+"/"+cmd.File, c.eng.ExecOutput(ctx, d.container.ID, engine.ExecSpec{Cmd: cmd.Cmd, Env: cmd.Env}))
			// Dumps hold the data: 0600. Dated once per backup, so a second
			// pass finds them in kopia's cache and does not dump again.
			files = append(files, source.Stream(cmd.File, out, 0o600, c.p.dumpTime))
		}
		t.dumps = append(t.dumps, source.Dir(d.container.Name, t.now, files...))
	}
	for _, img := range c.p.images {
		if img.Saved {
			// Named by ID and dated by build time: kopia finds an image it
			// already holds by that and never asks the engine to save it.
			t.images = append(t.images, source.Stream(path.Base(img.Path), c.countedImage(c.eng.SaveImage(ctx, c.p.saveAs[img.ID])), 0o644, c.p.created[img.ID]))
		}
	}
}

// data are the volumes and bind mounts, each with its sidecar's scan.
func (t *treeParts) data() error {
	c := t.c
	t.volJobs = make([]*scanJob, len(c.p.volumes))
	for i, v := range c.p.volumes {
		var err error
		if t.volJobs[i], err = t.add(&t.volumes, layout.VolumePath(v.Name), v.Name, c.path(c.p.volDirs[v.Name]), t.skip); err != nil {
			return fmt.Errorf("volume %q: %w", v.Name, err)
		}
	}
	t.bindJobs = make([]*scanJob, len(c.p.binds))
	for i, b := range c.p.binds {
		var err error
		if t.bindJobs[i], err = t.add(&t.binds, layout.BindPath(b), layout.EscapePath(b), c.path(b), t.skip); err != nil {
			return fmt.Errorf("bind mount %s: %w", b, err)
		}
	}
	return nil
}

// containerDirs are each container's configuration and writable layer.
func (t *treeParts) containerDirs() error {
	c := t.c
	t.items = make([]layout.Container, len(c.p.containers))
	t.layerJobs = make([]*scanJob, len(c.p.containers))
	for i, ct := range c.p.containers {
		files, item, err := c.containerFiles(i, ct, t.now)
		if err != nil {
			return err
		}
		if dir := c.p.specs[ct.Name].WritableLayer; dir != "" {
			if t.layerJobs[i], err = t.add(&files, layout.LayerPath(ct.Name), layout.LayerDir, c.path(dir), layerSkip(c.eng, c.path(dir))); err != nil {
				return fmt.Errorf("writable layer of %s: %w", ct.Name, err)
			}
		}
		t.items[i] = item
		t.containers = append(t.containers, source.Dir(ct.Name, t.now, files...))
	}
	return nil
}

// tree builds the restore point's tree. The data entries exist at once;
// the scans for the sidecars run in a goroutine, and the manifest and the
// sidecars are lazy files that wait for it and come last in the walk.
// wait returns the scans' error once they are done.
func (c *capture) tree(ctx context.Context) (root source.Entry, wait func() error, err error) {
	t := &treeParts{ctx: ctx, c: c, now: time.Now().UTC()}
	if t.skip, err = excluder(c.p.policy.Exclude); err != nil {
		return nil, nil, err
	}
	t.streams(ctx)
	if err := t.data(); err != nil {
		return nil, nil, err
	}
	if err := t.containerDirs(); err != nil {
		return nil, nil, err
	}
	if c.p.project != "" {
		t.composeInfo, t.compose = composeSection(c.p.containers, t.now)
	}

	done := make(chan struct{})
	var manifest []byte
	var scanErr error
	go func() {
		defer close(done)
		if scanErr = c.scan(ctx, t.jobs); scanErr != nil {
			return
		}
		m := c.fullManifest(t.now, t.volJobs, t.bindJobs, t.layerJobs, t.items)
		if m.Compose = t.composeInfo; m.Compose != nil {
			for _, nk := range m.Compose.NotKept {
				c.notKept = append(c.notKept, layout.ComposeDir+": "+nk)
			}
		}
		manifest, scanErr = m.Marshal()
	}()
	wait = func() error { <-done; return scanErr }
	get := func(b *[]byte) func() ([]byte, error) {
		return func() ([]byte, error) { err := wait(); return *b, err }
	}
	metas := map[string]func() ([]byte, error){}
	for _, j := range t.jobs {
		metas[layout.MetaPath(j.path)] = get(&j.meta)
	}
	var children []source.Entry
	for _, sec := range []struct {
		name    string
		entries []source.Entry
	}{{layout.VolumesDir, t.volumes}, {layout.BindsDir, t.binds}, {layout.ContainersDir, t.containers}, {layout.ImagesDir, t.images}, {layout.DumpsDir, t.dumps}, {layout.ComposeDir, t.compose}} {
		if len(sec.entries) > 0 {
			children = append(children, source.Dir(sec.name, t.now, sec.entries...))
		}
	}
	children = append(children,
		source.Dir(layout.MetaDir, t.now, metaTree(metas, t.now)...),
		source.Lazy(layout.ManifestPath, 0o644, t.now, get(&manifest)))
	return source.DirInOrder("", t.now, children...), wait, nil
}

func (c *capture) manifest(now time.Time) layout.Manifest {
	info := c.eng.Info()
	return layout.Manifest{
		FormatVersion: layout.FormatVersion, Lifeboat: c.opts.Version, Host: info.Hostname, Engine: info,
		Unit: c.p.unit.String(), Kind: c.p.unit.Kind, Time: now, Consistency: c.p.mode,
		Project: c.p.project, Networks: c.p.networks, Exclude: c.p.policy.Exclude,
	}
}

// scan fills each job's sidecar and counts, and the progress totals.
func (c *capture) scan(ctx context.Context, jobs []*scanJob) error {
	start := time.Now()
	defer func() {
		c.opts.Log.Debug("sidecars scanned", "unit", c.p.unit.String(), "ms", time.Since(start).Milliseconds())
	}()
	var files, bytes int64
	c.notKept = nil
	for _, j := range jobs {
		sc, st, err := c.scanOne(ctx, j)
		if err != nil {
			return fmt.Errorf("%s: %w", j.path, err)
		}
		if j.meta, err = sc.Marshal(); err != nil {
			return err
		}
		j.data = layout.Data{Path: j.path, Meta: layout.MetaPath(j.path), Files: st.Files, Dirs: st.Dirs, Bytes: st.Bytes, NotKept: sc.NotKept}
		for _, nk := range sc.NotKept {
			c.notKept = append(c.notKept, j.path+"/"+string(nk.Path)+": "+nk.Reason)
		}
		files, bytes = files+st.Files, bytes+st.Bytes
		c.counters.TotalFiles.Store(files)
		c.counters.TotalBytes.Store(bytes)
	}
	return nil
}

// scanOne is j's sidecar: from the capture that fed it, or scanned.
func (c *capture) scanOne(ctx context.Context, j *scanJob) (*fsmeta.Sidecar, fsmeta.Stats, error) {
	if j.fed != nil {
		<-j.fed.done
		if j.fed.err != nil {
			return nil, fsmeta.Stats{}, errCaptureFailed
		}
		sc, st := j.fed.scanner.Result()
		return sc, st, nil
	}
	opts := fsmeta.ScanOptions{Exclude: j.skip}
	if j.listed != nil {
		opts.Keep = j.listed
	}
	if c.at != nil {
		opts.Dir = btrfs.CheckDir
	}
	// A snapshot's inodes are on a device of their own each time, and a
	// remote engine's data is staged anew: a memo would never match.
	memo := ""
	if c.opts.MemoDir != "" && c.at == nil && c.remote == nil {
		memo = filepath.Join(c.opts.MemoDir, memoName(c.p.unit.String(), j.path))
		opts.Memo = fsmeta.LoadXattrMemo(j.dir, memo)
	}
	sc, st, err := fsmeta.Scan(ctx, j.dir, opts)
	if err == nil && memo != "" {
		if err := opts.Memo.Save(memo); err != nil {
			c.opts.Log.Warn("xattr memo not saved: the next backup lists every xattr", "unit", c.p.unit.String(), "err", err)
		}
	}
	return sc, st, err
}

// memoName is the memo file of unit's data directory at path.
func memoName(unit, path string) string {
	sum := sha256.Sum256([]byte(unit + "\x00" + path))
	return hex.EncodeToString(sum[:16])
}

// containerFiles are a container's config.json and image.json.
func (c *capture) containerFiles(order int, ct engine.Container, now time.Time) ([]source.Entry, layout.Container, error) {
	spec := c.p.specs[ct.Name]
	cfg, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return nil, layout.Container{}, fmt.Errorf("encode config of %s: %w", ct.Name, err)
	}
	img, err := json.MarshalIndent(spec.Image, "", "  ")
	if err != nil {
		return nil, layout.Container{}, fmt.Errorf("encode image of %s: %w", ct.Name, err)
	}
	item := layout.Container{Name: ct.Name, Service: ct.Service, Image: spec.Image, Running: spec.Running, DependsOn: ct.DependsOn, Order: order}
	if ref, ok := c.p.timeline[ct.Name]; ok {
		item.Timeline = &ref
		item.TimelinePushed = c.p.pushed[ct.Name]
	}
	// config.json holds the environment, secrets included: 0600.
	return []source.Entry{source.Bytes(layout.ConfigFile, cfg, 0o600, now), source.Bytes(layout.ImageFile, img, 0o644, now)}, item, nil
}

// metaTree turns "meta/a/b/c.json" paths into nested directories.
func metaTree(files map[string]func() ([]byte, error), now time.Time) []source.Entry {
	type node struct {
		dirs  map[string]*node
		files []source.Entry
	}
	root := &node{dirs: map[string]*node{}}
	for p, b := range files {
		parts := splitSlash(p)[1:] // drop "meta"
		n := root
		for _, d := range parts[:len(parts)-1] {
			if n.dirs[d] == nil {
				n.dirs[d] = &node{dirs: map[string]*node{}}
			}
			n = n.dirs[d]
		}
		n.files = append(n.files, source.Lazy(parts[len(parts)-1], 0o644, now, b))
	}
	var build func(n *node) []source.Entry
	build = func(n *node) []source.Entry {
		out := append([]source.Entry(nil), n.files...)
		for name, d := range n.dirs {
			out = append(out, source.Dir(name, now, build(d)...))
		}
		return out
	}
	return build(root)
}

func splitSlash(p string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(p); i++ {
		if i == len(p) || p[i] == '/' {
			out = append(out, p[start:i])
			start = i + 1
		}
	}
	return out
}

// fullManifest is the point's manifest once the scans filled the jobs'
// counts and sidecar paths.
func (c *capture) fullManifest(now time.Time, volJobs, bindJobs, layerJobs []*scanJob, items []layout.Container) layout.Manifest {
	m := c.manifest(now)
	for i, v := range c.p.volumes {
		m.Volumes = append(m.Volumes, layout.Volume{Volume: v, Data: volJobs[i].data})
	}
	for i, b := range c.p.binds {
		m.Binds = append(m.Binds, layout.Bind{Source: b, Data: bindJobs[i].data})
	}
	for i := range items {
		if j := layerJobs[i]; j != nil {
			items[i].Layer = &j.data
		}
	}
	m.Containers = items
	m.Images = c.p.images
	for _, d := range c.p.dumps {
		m.Dumps = append(m.Dumps, d.Dump)
	}
	return m
}
