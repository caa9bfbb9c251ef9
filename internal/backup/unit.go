package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/btrfs"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/journal"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/priority"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/source"
)

// backupUnit backs up u, whose lock it began to take at start and then
// waited for other jobs' holds for waited. The point's duration is the
// job's own work: from start, without the wait, which is a phase apart
// ("wait") and is not counted, so that a backup queued behind another is
// neither reported long nor judged slow. Its "open" phase runs from
// the lock to the repository opened: the plan, and for a read-only
// capture its first tree's scans, run beside the open.
func backupUnit(ctx context.Context, repo func() (*repository.Repository, error), eng *engine.Client, u Unit, opts Options, lt lockTimes) Result {
	res := Result{}
	phases := newPhases()
	start := lt.start
	if lt.waited > 0 {
		phases.addDuration("wait", lt.waited)
		start = start.Add(lt.waited)
	}
	planned := time.Now()
	counters := progress.New()
	if opts.OnStart != nil {
		opts.OnStart(u.String(), counters)
	}
	p, err := planAll(ctx, eng, u, opts)
	if err != nil {
		res.Err = err
		return res
	}
	phases.add("plan", planned)
	readOnly := p.readOnly()
	if !readOnly {
		if err := lt.confirm(ctx); err != nil {
			res.Err = err
			return res
		}
	}
	if err := p.storeImages(ctx, eng, opts, phases); err != nil {
		res.Err = err
		return res
	}
	if !p.policy.Enabled {
		if opts.All {
			res.Unit, res.Skipped = u.String(), policy.LabelEnable+"=false"
			return res
		}
		res.Err = fmt.Errorf("%s has %s=false: remove the label to back it up", u, policy.LabelEnable)
		return res
	}
	c := &capture{p: p, eng: eng, opts: opts, counters: counters, phases: phases, confirm: lt.confirm}
	if p.remote {
		if c.remote, err = newRemoteStage(opts.StageDir, opts.HelperDir); err != nil {
			res.Err = err
			return res
		}
		defer func() {
			if err := c.remote.remove(); err != nil {
				opts.Log.Warn("staging area not removed", "unit", u.String(), "err", err)
			}
		}()
	}
	if readOnly {
		// The sidecars' scans then run while kopia derives the
		// repository's key on one core: the other is idle.
		if err := c.prepare(ctx); err != nil {
			res.Err = err
			return res
		}
	}
	r, err := repo()
	phases.add("open", start)
	if err != nil {
		res.Err = err
		return res
	}
	return c.save(ctx, r, u, start)
}

// save runs the capture into a restore point of u.
func (c *capture) save(ctx context.Context, repo *repository.Repository, u Unit, start time.Time) Result {
	res := Result{}
	p, opts, counters := c.p, c.opts, c.counters
	point, err := repo.Snapshot(ctx, repository.SnapshotOptions{Unit: u.String(), Kind: u.Kind, Trigger: trigger(opts), Progress: counters, Start: start,
		Host: opts.Host, EngineID: c.eng.Info().ID, Engine: opts.EngineName,
		Judge: judge(ctx, repo, u.String(), p.policy.Anomaly, opts.Log, c.imageBytes.Load)}, c.run)
	if err != nil {
		// No point refers to the timeline images of a failed backup.
		p.untagTimeline(context.WithoutCancel(ctx), c.eng)
		res.Err = err
		return res
	}
	res.Point = point
	if c.postErr != nil {
		res.Err = fmt.Errorf("restore point %s saved, but %w", point.ID, c.postErr)
	}
	if res.AddedBytes == 0 {
		res.AddedBytes = counters.StoredBytes.Load()
	}
	// Unchanged since the point before: what the first pass found in its
	// cache (a frozen pass finds nearly everything in the live pass's).
	res.Unchanged = c.unchanged
	res.NotKept = c.notKept
	opts.Log.Info("restore point saved", "unit", u.String(), "id", point.ID, "consistency", point.Consistency, "downtime_ms", point.DowntimeMS)
	if point.Suspect {
		opts.Log.Info("restore point suspect: unlike the unit's history", "unit", u.String(), "id", point.ID, "anomalies", point.Anomalies)
	}
	return res
}

// planAll plans the unit, its images and, when it is dumped, its dumps.
func planAll(ctx context.Context, eng *engine.Client, u Unit, opts Options) (*plan, error) {
	p, err := planUnit(ctx, eng, u, opts.Consistency, opts.Defaults)
	if err == nil {
		err = p.planImages(ctx, eng, opts.Images)
	}
	if err == nil && p.decision.dump {
		err = p.planDumps(ctx, eng)
	}
	return p, err
}

// storeImages pushes the unit's images or commits its timeline images,
// as planned, before any data is read.
func (p *plan) storeImages(ctx context.Context, eng *engine.Client, opts Options, phases *phases) error {
	if !p.push && !p.commit {
		return nil
	}
	defer phases.add("images", time.Now())
	if p.push && !p.commit {
		// The unit's own images go to the registry; commit,push sends the
		// timeline images instead.
		return p.pushImages(ctx, eng, opts.Registry)
	}
	mode := opts.Images
	if mode == "" {
		mode = p.policy.Images
	}
	return p.commitTimeline(ctx, eng, strings.Contains(mode, "save"), opts.Registry, time.Now())
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
	phases   *phases
	passes   int
	frozen   bool // the unit is paused or stopped
	// unchanged are the bytes the first pass found unchanged since the
	// point before.
	unchanged int64
	notKept   []string
	downtime  time.Duration

	postErr error
	confirm func(context.Context) error // the unit's lock is ours for certain (unitlock.Lock.Confirm)
	// prepared is the first pass's tree when it was built before the
	// repository opened (prepare), preparedWait its scans' wait.
	prepared     source.Entry
	preparedWait func() error
	at           func(string) string // data directory → where it is read, in snapshot mode
	remote       *remoteStage        // the engine is remote: its data is staged here

	// seen is what the live pass handed kopia, by data directory, and
	// frozenStage where the frozen pass copies the rest (frozen.go); nil when
	// the frozen pass reads the files itself.
	seen        map[string]liveDir
	frozenStage *source.Stage
	captures    []*pendingDir // data directories being captured, frozen

	mu         sync.Mutex
	streamErrs []error
	sizes      map[string]int64 // dumps read to their end, by "container/file"
	imageBytes atomic.Int64     // of image archives read
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
		// The point is saved once this returns: the unit must be ours.
		err = c.confirm(ctx)
	}
	if err == nil {
		failpoint.Hit("saving")
	}
	return repository.Labels{Consistency: c.p.mode, DowntimeMS: c.downtime.Milliseconds(),
		Counted: true, Files: c.counters.TotalFiles.Load(), Bytes: c.counters.TotalBytes.Load(), Dumps: c.dumpSizes(),
		PhasesMS: c.phases.ms()}, err
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
	defer c.phases.add(c.passName(), time.Now())
	root, wait := c.prepared, c.preparedWait
	c.prepared, c.preparedWait = nil, nil
	if root == nil {
		var err error
		if root, wait, err = c.startPass(ctx); err != nil {
			return err
		}
	}
	if c.passes == 1 {
		defer func() { c.unchanged = c.counters.CachedBytes.Load() }()
	}
	uerr := up.Upload(ctx, root)
	if serr := c.streamErr(); uerr != nil && serr != nil {
		// kopia reports a failed stream as a cancelled upload: say why.
		uerr = serr
	}
	return errors.Join(uerr, wait())
}

// prepare starts the first pass before the repository is open: its
// tree, with the sidecars' scans running (pass then uploads it).
func (c *capture) prepare(ctx context.Context) (err error) {
	c.prepared, c.preparedWait, err = c.startPass(ctx)
	return err
}

// startPass begins a pass: its counters, its staging, its tree.
func (c *capture) startPass(ctx context.Context) (source.Entry, func() error, error) {
	c.counters.StartPass()
	c.passes++
	if c.remote != nil {
		if err := c.stage(ctx); err != nil {
			return nil, nil, err
		}
	}
	return c.tree(ctx)
}

// recordErrors wraps a stream so its failure (a dump's non-zero exit,
// with the tool's stderr) is kept for the error message.
func (c *capture) recordErrors(r io.ReadCloser) io.ReadCloser {
	return &recordingReader{ReadCloser: r, c: c}
}

// measured is recordErrors that also records the stream's size under key
// once it is read to its end, for the anomaly guard. A later pass that
// finds the stream in kopia's cache does not read it and keeps the size.
func (c *capture) measured(key string, r io.ReadCloser) io.ReadCloser {
	return &recordingReader{ReadCloser: r, c: c, key: key}
}

// countedImage is recordErrors that also counts the bytes of image
// archives read: a new image is stored anew by nature, and the anomaly
// guard must not take an image upgrade for data rewritten in place.
func (c *capture) countedImage(r io.ReadCloser) io.ReadCloser {
	return &recordingReader{ReadCloser: r, c: c, image: true}
}

// dumpSizes are the measured dumps' sizes; nil when no dump was read.
func (c *capture) dumpSizes() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sizes) == 0 {
		return nil
	}
	out := make(map[string]int64, len(c.sizes))
	for k, v := range c.sizes {
		out[k] = v
	}
	return out
}

func (c *capture) streamErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return errors.Join(c.streamErrs...)
}

type recordingReader struct {
	io.ReadCloser
	c     *capture
	key   string // "" : not measured
	image bool   // counted in c.imageBytes
	n     int64
	start time.Time // of the first read
}

func (r *recordingReader) Read(p []byte) (int, error) {
	if r.start.IsZero() {
		r.start = time.Now()
	}
	n, err := r.ReadCloser.Read(p)
	r.n += int64(n)
	if r.image {
		r.c.imageBytes.Add(int64(n))
	}
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		switch {
		case r.image:
			r.c.phases.add("images", r.start)
		case r.key != "":
			r.c.phases.add("dumps", r.start)
		}
		if r.key != "" {
			r.c.mu.Lock()
			if r.c.sizes == nil {
				r.c.sizes = map[string]int64{}
			}
			r.c.sizes[r.key] = r.n
			r.c.mu.Unlock()
		}
	default:
		r.c.mu.Lock()
		r.c.streamErrs = append(r.c.streamErrs, err)
		r.c.mu.Unlock()
	}
	return n, err
}

// paused uploads the bulk live, then freezes every running container of the
// unit at one instant and captures only what changed meanwhile, uploaded
// once the unit is thawed (frozen.go): the point is crash-consistent
// across the unit and the freeze lasts as long as the changed files take
// to compare with their copies, not the data set.
func (c *capture) paused(ctx context.Context, up repository.Uploader) error {
	staged, done, err := c.staging()
	if err != nil {
		return err
	}
	defer done()
	if err := c.pass(ctx, up); err != nil {
		return err
	}
	c.checkStill(ctx)
	// The prestage's pace sets what the frozen pass has left to compare:
	// normal priority from there until the unit is thawed.
	urgent := priority.Urgent()
	defer urgent()
	if staged {
		if staged, err = c.prestage(ctx); err != nil {
			return err
		}
	}
	var entries []journal.Container
	for _, ct := range c.p.containers {
		if ct.State == "running" {
			entries = append(entries, journal.Container{ID: ct.ID, Name: ct.Name, Action: journal.Paused})
		}
	}
	var root source.Entry
	err = c.quiesced(ctx, entries, func(func() error) error {
		// All at once: the closer together the freezes, the closer the
		// point is to one instant for the whole unit.
		return each(entries, func(e journal.Container) error { return c.eng.Pause(ctx, e.ID) })
	}, func(ctx context.Context) (err error) {
		if !staged || len(entries) == 0 {
			return c.pass(ctx, up)
		}
		root, err = c.captureFrozen(ctx)
		return err
	})
	urgent()
	if err == nil && root != nil {
		err = c.uploadCaptured(ctx, up, root)
	}
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
