package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

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

// Safety work — thawing, starting — must finish even when the job is
// cancelled, within these limits.
const (
	thawTimeout  = 2 * time.Minute
	startTimeout = 2 * time.Minute
)

func backupUnit(ctx context.Context, repo *repository.Repository, eng *engine.Client, u Unit, opts Options) Result {
	res := Result{}
	counters := progress.New()
	if opts.OnStart != nil {
		opts.OnStart(u.String(), counters)
	}
	if !eng.IsLocal() {
		res.Err = fmt.Errorf("the engine at %s is remote; reading container data through the Engine API is not supported yet: run lifeboat on that host", eng.Host())
		return res
	}
	p, err := planUnit(ctx, eng, u, opts.Consistency)
	if err != nil {
		res.Err = err
		return res
	}
	if !p.policy.Enabled {
		res.Err = fmt.Errorf("%s has %s=false: remove the label to back it up", u, policy.LabelEnable)
		return res
	}
	c := &capture{p: p, eng: eng, opts: opts, counters: counters}
	point, err := repo.Snapshot(ctx, repository.SnapshotOptions{Unit: u.String(), Kind: u.Kind, Trigger: trigger(opts), Progress: counters}, c.run)
	if err != nil {
		res.Err = err
		return res
	}
	res.Point = point
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
}

func (c *capture) run(ctx context.Context, up repository.Uploader) (repository.Labels, error) {
	var err error
	switch c.p.mode {
	case ModeNone:
		err = c.pass(ctx, up)
	case ModePause:
		err = c.paused(ctx, up)
	case ModeStop:
		err = c.stopped(ctx, up)
	default:
		err = fmt.Errorf("consistency %q not available", c.p.mode)
	}
	return repository.Labels{Consistency: c.p.mode, DowntimeMS: c.downtime.Milliseconds()}, err
}

// pass builds the unit's tree as it is now and uploads it.
func (c *capture) pass(ctx context.Context, up repository.Uploader) error {
	root, err := c.tree(ctx)
	if err != nil {
		return err
	}
	return up.Upload(ctx, root)
}

// paused uploads the bulk live, then freezes every running container of the
// unit at one instant and uploads only what changed meanwhile: the point is
// crash-consistent across the unit and the freeze lasts as long as the
// change takes to read, not the data set.
func (c *capture) paused(ctx context.Context, up repository.Uploader) error {
	if err := c.pass(ctx, up); err != nil {
		return err
	}
	var entries []journal.Container
	for _, ct := range c.p.containers {
		if ct.State == "running" {
			entries = append(entries, journal.Container{ID: ct.ID, Name: ct.Name, Action: journal.Paused})
		}
	}
	return c.quiesced(ctx, entries, func() error {
		for _, e := range entries {
			if err := c.eng.Pause(ctx, e.ID); err != nil {
				return err
			}
		}
		return nil
	}, func(ctx context.Context) error {
		return c.pass(ctx, up)
	})
}

// stopped stops the unit in reverse start order, captures it, and starts
// it again in order, waiting for health where a healthcheck exists.
func (c *capture) stopped(ctx context.Context, up repository.Uploader) error {
	var entries []journal.Container
	for i, ct := range c.p.containers {
		if ct.Running() {
			entries = append(entries, journal.Container{ID: ct.ID, Name: ct.Name, Action: journal.Stopped, Order: i})
		}
	}
	return c.quiesced(ctx, entries, func() error {
		for i := len(entries) - 1; i >= 0; i-- {
			if err := c.eng.Stop(ctx, entries[i].ID, engine.ContainerStopTimeout); err != nil {
				return err
			}
		}
		return nil
	}, func(ctx context.Context) error {
		return c.pass(ctx, up)
	})
}

// quiesced records entries in the freeze journal, freezes, runs capture,
// and always thaws — also on error or cancellation, with a context of its
// own. Should lifeboat die in between, the next command replays the journal.
func (c *capture) quiesced(ctx context.Context, entries []journal.Container, freeze func() error, capture func(context.Context) error) (err error) {
	if len(entries) == 0 {
		return capture(ctx)
	}
	j, err := journal.Open(c.opts.JournalDir, c.opts.Log)
	if err != nil {
		return err
	}
	h, err := j.Begin(ctx, journal.Entry{Unit: c.p.unit.String(), EngineHost: c.eng.Host(), PID: os.Getpid(), Started: time.Now(), Containers: entries})
	if err != nil {
		return fmt.Errorf("record freeze journal: %w", err)
	}
	failpoint.Hit("journalled")
	start := time.Now()
	defer func() {
		tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), thawTimeout)
		defer cancel()
		terr := c.thaw(tctx, entries)
		c.downtime = time.Since(start)
		if terr == nil {
			terr = h.Done()
		}
		err = errors.Join(err, terr)
	}()
	if err := freeze(); err != nil {
		return fmt.Errorf("quiesce %s: %w", c.p.unit, err)
	}
	failpoint.Hit("frozen")
	if err := capture(ctx); err != nil {
		return err
	}
	failpoint.Hit("captured")
	return nil
}

func (c *capture) thaw(ctx context.Context, entries []journal.Container) error {
	var errs []error
	for _, e := range entries {
		switch e.Action {
		case journal.Paused:
			errs = append(errs, c.eng.Unpause(ctx, e.ID))
		case journal.Stopped:
			if err := c.eng.Start(ctx, e.ID); err != nil {
				errs = append(errs, err)
				continue
			}
			errs = append(errs, c.eng.WaitHealthy(ctx, e.ID, startTimeout))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("resume %s: %w", c.p.unit, err)
	}
	return nil
}

// tree builds the restore point's tree; every call scans again, so each
// pass records the state it uploads.
func (c *capture) tree(ctx context.Context) (source.Entry, error) {
	now := time.Now().UTC()
	info := c.eng.Info()
	m := layout.Manifest{
		FormatVersion: layout.FormatVersion, Lifeboat: c.opts.Version, Host: info.Hostname, Engine: info,
		Unit: c.p.unit.String(), Kind: c.p.unit.Kind, Time: now, Consistency: c.p.mode,
		Project: c.p.project, Networks: c.p.networks, Exclude: c.p.policy.Exclude,
	}
	skip, err := excluder(c.p.policy.Exclude)
	if err != nil {
		return nil, err
	}
	t := &treeBuilder{now: now, counters: c.counters}
	c.notKept = nil
	for _, v := range c.p.volumes {
		d, err := t.data(ctx, &t.volumes, layout.VolumePath(v.Name), v.Name, v.Mountpoint, skip)
		if err != nil {
			return nil, fmt.Errorf("volume %q: %w", v.Name, err)
		}
		m.Volumes = append(m.Volumes, layout.Volume{Volume: v, Data: d})
	}
	for _, b := range c.p.binds {
		d, err := t.data(ctx, &t.binds, layout.BindPath(b), layout.EscapePath(b), b, skip)
		if err != nil {
			return nil, fmt.Errorf("bind mount %s: %w", b, err)
		}
		m.Binds = append(m.Binds, layout.Bind{Source: b, Data: d})
	}
	for i, ct := range c.p.containers {
		if err := c.container(ctx, t, &m, i, ct); err != nil {
			return nil, err
		}
	}
	for _, d := range t.items {
		for _, nk := range d.NotKept {
			c.notKept = append(c.notKept, d.Path+"/"+string(nk.Path)+": "+nk.Reason)
		}
	}
	mb, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	return t.root(source.Bytes(layout.ManifestPath, mb, 0o644, now)), nil
}

func (c *capture) container(ctx context.Context, t *treeBuilder, m *layout.Manifest, order int, ct engine.Container) error {
	spec := c.p.specs[ct.Name]
	cfg, err := json.MarshalIndent(spec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode config of %s: %w", ct.Name, err)
	}
	img, err := json.MarshalIndent(spec.Image, "", "  ")
	if err != nil {
		return fmt.Errorf("encode image of %s: %w", ct.Name, err)
	}
	item := layout.Container{Name: ct.Name, Service: ct.Service, Image: spec.Image, Running: spec.Running, DependsOn: ct.DependsOn, Order: order}
	// config.json holds the environment, secrets included: 0600.
	files := []source.Entry{source.Bytes(layout.ConfigFile, cfg, 0o600, t.now), source.Bytes(layout.ImageFile, img, 0o644, t.now)}
	if spec.WritableLayer != "" {
		d, err := t.data(ctx, &files, layout.LayerPath(ct.Name), layout.LayerDir, spec.WritableLayer, nil)
		if err != nil {
			return fmt.Errorf("writable layer of %s: %w", ct.Name, err)
		}
		item.Layer = &d
	}
	t.containers = append(t.containers, source.Dir(ct.Name, t.now, files...))
	m.Containers = append(m.Containers, item)
	return nil
}

// treeBuilder collects the entries of one pass.
type treeBuilder struct {
	now        time.Time
	counters   *progress.Counters
	volumes    []source.Entry
	binds      []source.Entry
	containers []source.Entry
	metas      map[string][]byte // sidecar path → content
	items      []layout.Data
	files      int64
	bytes      int64
}

// data scans dir, records its sidecar, and appends its entry to section;
// skip (nil: nothing) leaves paths out of both.
func (t *treeBuilder) data(ctx context.Context, section *[]source.Entry, path, name, dir string, skip func(string, bool) bool) (layout.Data, error) {
	sc, st, err := fsmeta.Scan(ctx, dir, fsmeta.ScanOptions{Exclude: skip})
	if err != nil {
		return layout.Data{}, err
	}
	meta, err := sc.Marshal()
	if err != nil {
		return layout.Data{}, err
	}
	e, err := source.Filtered(dir, name, skip)
	if err != nil {
		return layout.Data{}, err
	}
	if t.metas == nil {
		t.metas = map[string][]byte{}
	}
	t.metas[layout.MetaPath(path)] = meta
	t.files += st.Files
	t.bytes += st.Bytes
	t.counters.TotalFiles.Store(t.files)
	t.counters.TotalBytes.Store(t.bytes)
	*section = append(*section, e)
	d := layout.Data{Path: path, Meta: layout.MetaPath(path), Files: st.Files, Dirs: st.Dirs, Bytes: st.Bytes, NotKept: sc.NotKept}
	t.items = append(t.items, d)
	return d, nil
}

func (t *treeBuilder) root(manifest source.Entry) source.Entry {
	children := []source.Entry{manifest, source.Dir(layout.MetaDir, t.now, metaTree(t.metas, t.now)...)}
	for _, sec := range []struct {
		name    string
		entries []source.Entry
	}{{layout.VolumesDir, t.volumes}, {layout.BindsDir, t.binds}, {layout.ContainersDir, t.containers}} {
		if len(sec.entries) > 0 {
			children = append(children, source.Dir(sec.name, t.now, sec.entries...))
		}
	}
	return source.Dir("", t.now, children...)
}

// metaTree turns "meta/a/b/c.json" paths into nested directories.
func metaTree(files map[string][]byte, now time.Time) []source.Entry {
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
		n.files = append(n.files, source.Bytes(parts[len(parts)-1], b, 0o644, now))
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
