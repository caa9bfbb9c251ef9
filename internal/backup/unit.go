package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/btrfs"
	"github.com/lifeboat-backup/lifeboat/internal/consistency"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
	"github.com/lifeboat-backup/lifeboat/internal/journal"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/source"
)

func backupUnit(ctx context.Context, repo *repository.Repository, eng *engine.Client, u Unit, opts Options) Result {
	res := Result{}
	counters := progress.New()
	if opts.OnStart != nil {
		opts.OnStart(u.String(), counters)
	}
	if !eng.IsLocal() {
		res.Err = fmt.Errorf("the engine at %s is remote; reading data through the Engine API is not supported yet: run lifeboat on that host", eng.Host())
		return res
	}
	p, err := planUnit(ctx, eng, u, opts.Consistency, opts.Defaults)
	if err == nil {
		err = p.planImages(ctx, eng, opts.Images)
	}
	if err != nil {
		res.Err = err
		return res
	}
	if p.decision.dump {
		if err := p.planDumps(ctx, eng); err != nil {
			res.Err = err
			return res
		}
	}
	if p.push && !p.commit {
		// The unit's own images go to the registry; commit,push sends the
		// timeline images instead.
		if err := p.pushImages(ctx, eng, opts.Registry); err != nil {
			res.Err = err
			return res
		}
	}
	if p.commit {
		mode := opts.Images
		if mode == "" {
			mode = p.policy.Images
		}
		if err := p.commitTimeline(ctx, eng, strings.Contains(mode, "save"), opts.Registry, time.Now()); err != nil {
			res.Err = err
			return res
		}
	}
	if !p.policy.Enabled {
		if opts.All {
			res.Unit, res.Skipped = u.String(), policy.LabelEnable+"=false"
			return res
		}
		res.Err = fmt.Errorf("%s has %s=false: remove the label to back it up", u, policy.LabelEnable)
		return res
	}
	c := &capture{p: p, eng: eng, opts: opts, counters: counters}
	point, err := repo.Snapshot(ctx, repository.SnapshotOptions{Unit: u.String(), Kind: u.Kind, Trigger: trigger(opts), Progress: counters}, c.run)
	if err != nil {
		// No point refers to the timeline images of a failed backup.
		p.untagTimeline(context.WithoutCancel(ctx), eng)
		res.Err = err
		return res
	}
	res.Point = point
	if c.postErr != nil {
		res.Err = fmt.Errorf("restore point %s saved, but %w", point.ID, c.postErr)
	}
	res.AddedBytes = counters.StoredBytes.Load()
	res.Unchanged = counters.CachedBytes.Load()
	res.NotKept = c.notKept
	opts.Log.Info("restore point saved", "unit", u.String(), "id", point.ID, "consistency", point.Consistency, "downtime_ms", point.DowntimeMS)
	return res
}

// excluder compiles lifeboat.exclude patterns; nil when there are none.
func excluder(patterns []string) (func(string, bool) bool, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	m, err := policy.NewMatcher(patterns)
	if err != nil {
		return nil, err
	}
	return m.Match, nil
}

func trigger(opts Options) string {
	if opts.Trigger == "" {
		return "manual"
	}
	return opts.Trigger
}

type capture struct {
	p        *plan
	eng      *engine.Client
	opts     Options
	counters *progress.Counters
	notKept  []string
	downtime time.Duration

	postErr error
	at      func(string) string // data directory → where it is read, in snapshot mode

	mu         sync.Mutex
	streamErrs []error
}

func (c *capture) run(ctx context.Context, up repository.Uploader) (repository.Labels, error) {
	err := c.hooks(ctx, c.p.pre)
	if err == nil {
		switch c.p.decision.files {
		case ModeNone:
			// With dump, the dumps are the consistent copy; files are read
			// live beside them.
			err = c.pass(ctx, up)
		case ModePause:
			err = c.paused(ctx, up)
		case ModeStop:
			err = c.stopped(ctx, up)
		case ModeSnapshot:
			err = c.snapshotted(ctx, up)
		default:
			err = fmt.Errorf("consistency %q not available", c.p.mode)
		}
	}
	// Post hooks always run, also after a failed pre hook or capture: they
	// undo what the pre hooks did, and a cancelled job must undo it too.
	c.postErr = c.hooks(context.WithoutCancel(ctx), c.p.post)
	if err == nil {
		failpoint.Hit("saving")
	}
	return repository.Labels{Consistency: c.p.mode, DowntimeMS: c.downtime.Milliseconds(),
		Counted: true, Files: c.counters.TotalFiles.Load(), Bytes: c.counters.TotalBytes.Load()}, err
}

// hooks runs hooks one after another. A failing pre hook stops the rest
// and the backup; every post hook runs whatever the others did.
func (c *capture) hooks(ctx context.Context, hooks []consistency.Hook) error {
	var errs []error
	for _, h := range hooks {
		if err := c.hook(ctx, h); err != nil {
			if h.Phase == "pre" {
				return err
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (c *capture) hook(ctx context.Context, h consistency.Hook) error {
	log := c.opts.Log.With("unit", c.p.unit.String(), "container", h.Container, "hook", h.Label)
	for _, ct := range c.p.containers {
		if ct.ID == h.ContainerID && ct.State != "running" {
			log.Warn("hook not run: the container is not running", "state", ct.State)
			return nil
		}
	}
	hctx, cancel := context.WithTimeoutCause(ctx, h.Timeout, fmt.Errorf("timed out after %s (%s)", h.Timeout, consistency.LabelHookTimeout))
	defer cancel()
	var out tailBuffer
	start := time.Now()
	res, err := c.eng.Exec(hctx, h.ContainerID, engine.ExecSpec{Cmd: []string{"sh", "-c", h.Cmd}}, nil, &out, &out)
	// The command itself is not logged: it is the user's, and may carry a
	// secret; the label names it.
	log.Info(h.Phase+" hook ran", "exit_code", res.ExitCode, "duration_ms", time.Since(start).Milliseconds(), "output", out.String())
	switch {
	case err != nil:
		return fmt.Errorf("%s hook (%s): %w; output: %s", h.Phase, h.Label, err, out.Tail())
	case res.ExitCode != 0:
		return fmt.Errorf("%s hook (%s) exited %d: %s", h.Phase, h.Label, res.ExitCode, out.Tail())
	}
	return nil
}

// tailBuffer keeps the last 16 KiB of a hook's output.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > 16<<10 {
		t.b = append(t.b[:0], t.b[len(t.b)-16<<10:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// Tail is the last lines, for an error message.
func (t *tailBuffer) Tail() string {
	s := strings.TrimSpace(string(t.b))
	if len(s) > 500 {
		s = "…" + s[len(s)-500:]
	}
	if s == "" {
		return "(no output)"
	}
	return s
}

// snapshotted freezes the unit only while read-only btrfs snapshots of its
// subvolumes are taken, then reads the point from the snapshots.
func (c *capture) snapshotted(ctx context.Context, up repository.Uploader) error {
	set, err := btrfs.Plan(c.p.dataPaths())
	if err != nil {
		return fmt.Errorf("prepare btrfs snapshots: %w", err)
	}
	defer func() {
		if err := set.Remove(); err != nil {
			c.opts.Log.Warn("btrfs snapshots not removed: the next backup removes them", "unit", c.p.unit.String(), "err", err)
		}
	}()
	var entries []journal.Container
	for _, ct := range c.p.containers {
		if ct.State == "running" {
			entries = append(entries, journal.Container{ID: ct.ID, Name: ct.Name, Action: journal.Paused})
		}
	}
	if err := c.quiesced(ctx, entries, func(func() error) error {
		return each(entries, func(e journal.Container) error { return c.eng.Pause(ctx, e.ID) })
	}, func(context.Context) error { return set.Take() }); err != nil {
		return err
	}
	c.opts.Log.Info("btrfs snapshots taken", "unit", c.p.unit.String(), "snapshots", set.Count(), "freeze_ms", c.downtime.Milliseconds(), "flush_ms", set.Synced.Milliseconds())
	c.at = set.Path
	return c.pass(ctx, up)
}

// path is where a data directory is read from: itself, or its snapshot.
func (c *capture) path(p string) string {
	if c.at == nil {
		return p
	}
	return c.at(p)
}

// pass builds the unit's tree as it is now and uploads it. The sidecar
// scans run beside kopia's walk: on a frozen unit that halves the walking
// time, which is the downtime.
func (c *capture) pass(ctx context.Context, up repository.Uploader) error {
	root, wait, err := c.tree(ctx)
	if err != nil {
		return err
	}
	uerr := up.Upload(ctx, root)
	if serr := c.streamErr(); uerr != nil && serr != nil {
		// kopia reports a failed stream as a cancelled upload: say why.
		uerr = serr
	}
	return errors.Join(uerr, wait())
}

// recordErrors wraps a stream so its failure (a dump's non-zero exit,
// with the tool's stderr) is kept for the error message.
func (c *capture) recordErrors(r io.ReadCloser) io.ReadCloser {
	return &recordingReader{ReadCloser: r, c: c}
}

func (c *capture) streamErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.streamErrs...)
}

type recordingReader struct {
	io.ReadCloser
	c *capture
}

func (r *recordingReader) Read(p []byte) (int, error) {
	n, err := r.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		r.c.mu.Lock()
		r.c.streamErrs = append(r.c.streamErrs, err)
		r.c.mu.Unlock()
	}
	return n, err
}

// paused uploads the bulk live, then freezes every running container of the
// unit at one instant and uploads only what changed meanwhile: the point is
// crash-consistent across the unit and the freeze lasts as long as the
// change takes to read, not the data set.
func (c *capture) paused(ctx context.Context, up repository.Uploader) error {
	if err := c.pass(ctx, up); err != nil {
		return err
	}
	c.checkStill(ctx)
	var entries []journal.Container
	for _, ct := range c.p.containers {
		if ct.State == "running" {
			entries = append(entries, journal.Container{ID: ct.ID, Name: ct.Name, Action: journal.Paused})
		}
	}
	err := c.quiesced(ctx, entries, func(func() error) error {
		// All at once: the closer together the freezes, the closer the
		// point is to one instant for the whole unit.
		return each(entries, func(e journal.Container) error { return c.eng.Pause(ctx, e.ID) })
	}, func(ctx context.Context) error {
		return c.pass(ctx, up)
	})
	if err == nil {
		c.checkStill(ctx) // started during the frozen pass?
	}
	return err
}

// stopped stops the unit in reverse start order, captures it, and starts
// it again in order, waiting for health where a healthcheck exists.
func (c *capture) stopped(ctx context.Context, up repository.Uploader) error {
	if c.p.decision.dump {
		// Dumps need their databases running: they are taken in a live
		// pass first, and the stopped pass finds them in its cache.
		if err := c.pass(ctx, up); err != nil {
			return err
		}
	}
	var entries []journal.Container
	for i, ct := range c.p.containers {
		if ct.Running() {
			entries = append(entries, journal.Container{ID: ct.ID, Name: ct.Name, Action: journal.Stopped, Order: i})
		}
	}
	return c.quiesced(ctx, entries, func(record func() error) error {
		for i := len(entries) - 1; i >= 0; i-- {
			if err := c.stop(ctx, &entries[i], record); err != nil {
				return err
			}
			if i > 0 {
				failpoint.Hit("stopped-one")
			}
		}
		return nil
	}, func(ctx context.Context) error {
		return c.pass(ctx, up)
	})
}

// scanJob is one tree of files to scan for its sidecar.
type scanJob struct {
	path, dir string
	skip      func(string, bool) bool
	data      layout.Data
	meta      []byte
}

// tree builds the restore point's tree. The data entries exist at once;
// the scans for the sidecars run in a goroutine, and the manifest and the
// sidecars are lazy files that wait for it and come last in the walk.
// wait returns the scans' error once they are done.
func (c *capture) tree(ctx context.Context) (root source.Entry, wait func() error, err error) {
	now := time.Now().UTC()
	skip, err := excluder(c.p.policy.Exclude)
	if err != nil {
		return nil, nil, err
	}
	var jobs []*scanJob
	add := func(section *[]source.Entry, path, name, dir string, skip func(string, bool) bool) (*scanJob, error) {
		e, err := source.Filtered(dir, name, skip)
		if err != nil {
			return nil, err
		}
		*section = append(*section, e)
		j := &scanJob{path: path, dir: dir, skip: skip}
		jobs = append(jobs, j)
		return j, nil
	}
	var volumes, binds, containers, images, dumps []source.Entry
	for _, d := range c.p.dumps {
		var files []source.Entry
		for _, cmd := range d.cmds {
			out := c.recordErrors(c.eng.ExecOutput(ctx, d.container.ID, engine.ExecSpec{Cmd: cmd.Cmd, Env: cmd.Env}))
			// Dumps hold the data: 0600. Dated once per backup, so a second
			// pass finds them in kopia's cache and does not dump again.
			files = append(files, source.Stream(cmd.File, out, 0o600, c.p.dumpTime))
		}
		dumps = append(dumps, source.Dir(d.container.Name, now, files...))
	}
	for _, img := range c.p.images {
		if img.Saved {
			// Named by ID and dated by build time: kopia finds an image it
			// already holds by that and never asks the engine to save it.
			images = append(images, source.Stream(path.Base(img.Path), c.recordErrors(c.eng.SaveImage(ctx, c.p.saveAs[img.ID])), 0o644, c.p.created[img.ID]))
		}
	}
	volJobs := make([]*scanJob, len(c.p.volumes))
	for i, v := range c.p.volumes {
		if volJobs[i], err = add(&volumes, layout.VolumePath(v.Name), v.Name, c.path(c.p.volDirs[v.Name]), skip); err != nil {
			return nil, nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
	}
	bindJobs := make([]*scanJob, len(c.p.binds))
	for i, b := range c.p.binds {
		if bindJobs[i], err = add(&binds, layout.BindPath(b), layout.EscapePath(b), c.path(b), skip); err != nil {
			return nil, nil, fmt.Errorf("bind mount %s: %w", b, err)
		}
	}
	items := make([]layout.Container, len(c.p.containers))
	layerJobs := make([]*scanJob, len(c.p.containers))
	for i, ct := range c.p.containers {
		files, item, err := c.containerFiles(i, ct, now)
		if err != nil {
			return nil, nil, err
		}
		if dir := c.p.specs[ct.Name].WritableLayer; dir != "" {
			if layerJobs[i], err = add(&files, layout.LayerPath(ct.Name), layout.LayerDir, c.path(dir), nil); err != nil {
				return nil, nil, fmt.Errorf("writable layer of %s: %w", ct.Name, err)
			}
		}
		items[i] = item
		containers = append(containers, source.Dir(ct.Name, now, files...))
	}

	done := make(chan struct{})
	var manifest []byte
	var scanErr error
	go func() {
		defer close(done)
		if scanErr = c.scan(ctx, jobs); scanErr != nil {
			return
		}
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
		manifest, scanErr = m.Marshal()
	}()
	wait = func() error { <-done; return scanErr }
	get := func(b *[]byte) func() ([]byte, error) {
		return func() ([]byte, error) { err := wait(); return *b, err }
	}
	metas := map[string]func() ([]byte, error){}
	for _, j := range jobs {
		metas[layout.MetaPath(j.path)] = get(&j.meta)
	}
	var children []source.Entry
	for _, sec := range []struct {
		name    string
		entries []source.Entry
	}{{layout.VolumesDir, volumes}, {layout.BindsDir, binds}, {layout.ContainersDir, containers}, {layout.ImagesDir, images}, {layout.DumpsDir, dumps}} {
		if len(sec.entries) > 0 {
			children = append(children, source.Dir(sec.name, now, sec.entries...))
		}
	}
	children = append(children,
		source.Dir(layout.MetaDir, now, metaTree(metas, now)...),
		source.Lazy(layout.ManifestPath, 0o644, now, get(&manifest)))
	return source.DirInOrder("", now, children...), wait, nil
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
	var files, bytes int64
	c.notKept = nil
	for _, j := range jobs {
		opts := fsmeta.ScanOptions{Exclude: j.skip}
		if c.at != nil {
			opts.Dir = btrfs.CheckDir
		}
		sc, st, err := fsmeta.Scan(ctx, j.dir, opts)
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
