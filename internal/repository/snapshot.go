package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kopia/kopia/fs"
	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/snapshot"
	"github.com/kopia/kopia/snapshot/policy"
	"github.com/kopia/kopia/snapshot/upload"

	"github.com/lifeboat-backup/lifeboat/internal/progress"
)

// SnapshotOptions describe the restore point about to be made.
type SnapshotOptions struct {
	Unit    string // "volume/NAME", "project/NAME", ...
	Kind    string // "volume", "project", "container"
	Trigger string // "manual", "schedule", ...
	// Host is the host the point is recorded under; "" is the
	// repository's hostname. A daemon of many engines names each
	// engine's points after the engine, as hosts are named.
	Host string
	// EngineID and Engine record the engine the unit was on: its own
	// ID, which tells engines apart when their hostnames are the same,
	// and its name in the config.
	EngineID, Engine string
	Progress         *progress.Counters
	// Start is when the job began (planning, image commits and pushes
	// included), from which the point's duration is counted; zero means
	// when Snapshot is called.
	Start time.Time
	// Judge is shown the new point, its data stored, before the point is
	// saved; the reasons it returns mark the point suspect in the same
	// record, so no point is ever saved without its verdict.
	Judge func(Point) []string
}

// Uploader uploads one pass of a capture. Every pass after the first reuses
// the one before as its cache, so a second pass reads only what changed.
type Uploader interface {
	Upload(ctx context.Context, root fs.Entry) error
}

// CaptureFunc uploads a unit in one or more passes and reports how it went.
// The last pass becomes the restore point.
type CaptureFunc func(ctx context.Context, up Uploader) (Labels, error)

// Snapshot makes one restore point. Nothing is saved unless capture
// succeeds and the last pass is complete: a failed backup never leaves a
// point that lists as good.
func (r *Repository) Snapshot(ctx context.Context, opts SnapshotOptions, capture CaptureFunc) (Point, error) {
	ctx = withKopiaLogs(ctx, r.log)
	start := opts.Start
	if start.IsZero() {
		start = time.Now()
	}
	host := r.hostname
	if opts.Host != "" {
		host = opts.Host
	}
	si := snapshot.SourceInfo{Host: host, UserName: username, Path: "/" + opts.Unit}
	var saved *snapshot.Manifest
	wopts := repo.WriteSessionOptions{Purpose: "lifeboat:backup"}
	if c := opts.Progress; c != nil {
		// Bytes of blobs written to storage: compressed and encrypted, what
		// the repository actually grows by.
		wopts.OnUpload = func(n int64) { c.StoredBytes.Add(n) }
	}
	err := repo.WriteSession(ctx, r.rep, wopts,
		func(ctx context.Context, w repo.RepositoryWriter) error {
			policyTree, err := policy.TreeForSource(ctx, w, si)
			if err != nil {
				return fmt.Errorf("load policy: %w", recordsDamaged(err))
			}
			prev, err := snapshot.FindPreviousManifests(ctx, w, si, nil)
			if err != nil {
				return fmt.Errorf("find previous restore points: %w", recordsDamaged(err))
			}
			p := &pass{w: w, si: si, policy: errorsToUs(policyTree), prev: complete(prev), counters: opts.Progress, log: r.log}
			labels, err := capture(ctx, p)
			if err != nil {
				return err
			}
			if p.last == nil {
				return errors.New("capture uploaded nothing")
			}
			m := p.last
			m.Tags = pointLabels(opts.Unit, opts.Kind, host, opts.Trigger, labels)
			engineLabels(m.Tags, opts.EngineID, opts.Engine)
			m.Description = "lifeboat " + opts.Unit
			if err := r.judge(ctx, w, m, opts, start); err != nil {
				return err
			}
			if _, err := snapshot.SaveSnapshot(ctx, w, m); err != nil {
				return fmt.Errorf("save restore point: %w", err)
			}
			saved = m
			return nil
		})
	if err != nil {
		return Point{}, err
	}
	return pointOf(saved), nil
}

// judge records the point's whole duration and what it stored, and the
// verdict of opts.Judge. The pending packs are written first, so that the
// stored bytes are all counted (a write session uploads its last packs
// only when it ends), but not their index: the session's end writes one
// index for the whole point, as before. A crash in between leaves packs no
// index names, as any killed backup does; maintenance deletes them.
func (r *Repository) judge(ctx context.Context, w repo.RepositoryWriter, m *snapshot.Manifest, opts SnapshotOptions, start time.Time) error {
	if c := opts.Progress; c != nil {
		t0 := time.Now()
		if err := flushPacks(ctx, w); err != nil {
			return fmt.Errorf("store restore point data: %w", err)
		}
		m.Tags[labelAdded] = strconv.FormatInt(c.StoredBytes.Load(), 10)
		addPhase(m.Tags, "store", time.Since(t0))
	}
	m.Tags[labelDuration] = strconv.FormatInt(time.Since(start).Milliseconds(), 10)
	if opts.Judge != nil {
		markSuspect(m.Tags, opts.Judge(pointOf(m)))
	}
	return nil
}

// addPhase adds one phase to the phases recorded in tags.
func addPhase(tags map[string]string, name string, d time.Duration) {
	phases := map[string]int64{}
	if v := tags[labelPhases]; v != "" {
		_ = json.Unmarshal([]byte(v), &phases)
	}
	phases[name] = d.Milliseconds()
	if b, err := json.Marshal(phases); err == nil {
		tags[labelPhases] = string(b)
	}
}

func flushPacks(ctx context.Context, w repo.RepositoryWriter) error {
	d, ok := w.(repo.DirectRepositoryWriter)
	if !ok {
		return w.Flush(ctx)
	}
	cm := d.ContentManager()
	cm.DisableIndexFlush(ctx)
	defer cm.EnableIndexFlush(ctx)
	return cm.Flush(ctx)
}

// complete keeps finished restore points only. kopia uses previous
// manifests just as a cache of unchanged files, but a checkpoint of a killed
// backup is a partial tree and says nothing about the files it lacks.
func complete(ms []*snapshot.Manifest) []*snapshot.Manifest {
	var out []*snapshot.Manifest
	for _, m := range ms {
		if m.IncompleteReason == "" {
			out = append(out, m)
		}
	}
	return out
}

type pass struct {
	w        repo.RepositoryWriter
	si       snapshot.SourceInfo
	policy   *policy.Tree
	prev     []*snapshot.Manifest
	last     *snapshot.Manifest
	counters *progress.Counters
	log      *slog.Logger
}

// errorsToUs is the policy with every file and directory error marked
// ignored, so that kopia hands each to uploadProgress.Error instead of
// cancelling: there, one that vanished while the unit ran is told apart
// from one that could not be read, which still fails the pass at once.
// Lifeboat defines no policy below a source's root, so one node holds it.
func errorsToUs(t *policy.Tree) *policy.Tree {
	eff := *t.EffectivePolicy()
	eff.ErrorHandlingPolicy.IgnoreFileErrors = policy.NewOptionalBool(true)
	eff.ErrorHandlingPolicy.IgnoreDirectoryErrors = policy.NewOptionalBool(true)
	return policy.BuildTree(map[string]*policy.Policy{".": &eff}, policy.DefaultPolicy)
}

func (p *pass) Upload(ctx context.Context, root fs.Entry) error {
	u := upload.NewUploader(p.w)
	// Docker volumes are users' data: a .kopiaignore or CACHEDIR.TAG inside
	// one must not make files disappear from the backup.
	u.DisableIgnoreRules = true
	fl := startFlusher(ctx, p.w, flushEvery)
	up := newUploadProgress(p.counters, fl, u.Cancel)
	u.Progress = up
	prev := p.prev
	if p.last != nil {
		prev = []*snapshot.Manifest{p.last}
	}
	u.ParallelUploads = uploadParallelism(ctx, root)
	g := newGate()
	defer g.close()
	m, err := u.Upload(ctx, g.wrap(root), p.policy, p.si, prev...)
	if ferr := fl.stop(); err == nil && ferr != nil {
		err = ferr
	}
	if err == nil {
		err = context.Cause(ctx)
	}
	if err == nil {
		err = up.err()
	}
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if m.IncompleteReason != "" {
		return fmt.Errorf("upload incomplete: %s", m.IncompleteReason)
	}
	if n := up.vanished.Load(); n > 0 {
		p.log.Info("files deleted while the backup read them are not in the point",
			"source", p.si.Path, "files", n, "first", up.firstVanished.Load())
	}
	p.last = m
	return nil
}

func pointOf(m *snapshot.Manifest) Point {
	downtime, _ := strconv.ParseInt(m.Tags[labelDowntime], 10, 64)
	p := Point{
		ID:          string(m.ID),
		Unit:        m.Tags[labelUnit],
		Kind:        m.Tags[labelKind],
		Host:        m.Tags[labelHost],
		EngineID:    m.Tags[labelEngineID],
		Engine:      m.Tags[labelEngine],
		Trigger:     m.Tags[labelTrigger],
		Consistency: m.Tags[labelConsistency],
		DowntimeMS:  downtime,
		Time:        m.StartTime.ToTime().UTC(),
		DurationMS:  labelOr(m.Tags[labelDuration], m.EndTime.Sub(m.StartTime).Milliseconds()),
		Bytes:       labelOr(m.Tags[labelBytes], m.Stats.TotalFileSize),
		Files:       labelOr(m.Tags[labelFiles], int64(m.Stats.TotalFileCount)),
	}
	verdict(&p, m.Tags)
	return p
}

func labelOr(v string, def int64) int64 {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return n
	}
	return def
}

// uploadProgress feeds kopia's upload events into our counters and the
// flusher, and decides on errors (see errorsToUs): a file or directory
// that no longer exists when kopia opens it was deleted by its container
// after the listing, and the point simply does not hold it, as a point
// taken a moment later would not; any other error cancels the upload and
// is kept, since kopia's manifest would say only "canceled".
type uploadProgress struct {
	upload.NullUploadProgress
	c      *progress.Counters
	flush  *flusher
	cancel func()

	vanished      atomic.Int64
	firstVanished atomic.Value // string

	mu       sync.Mutex
	firstErr error
}

func newUploadProgress(c *progress.Counters, fl *flusher, cancel func()) *uploadProgress {
	if c == nil {
		c = &progress.Counters{}
	}
	return &uploadProgress{c: c, flush: fl, cancel: cancel}
}

// Enabled is false: in kopia it only starts an estimate of the upload's
// size, a second walk of the whole tree (lstat of every file) whose result
// we never asked for, since the sidecar scan counts the totals. The other
// events arrive all the same.
func (p *uploadProgress) Enabled() bool { return false }

func (p *uploadProgress) CachedFile(_ string, size int64) {
	p.c.Files.Add(1)
	p.c.Bytes.Add(size)
	p.c.CachedBytes.Add(size)
}

func (p *uploadProgress) HashedBytes(n int64) { p.c.Bytes.Add(n) }

func (p *uploadProgress) FinishedHashingFile(string, int64) {
	p.flush.hashed()
	p.c.Files.Add(1)
}

func (p *uploadProgress) Error(path string, err error, _ bool) {
	if errors.Is(err, os.ErrNotExist) {
		if p.vanished.Add(1) == 1 {
			p.firstVanished.Store(path)
		}
		return
	}
	p.c.Errors.Add(1)
	p.mu.Lock()
	if p.firstErr == nil {
		p.firstErr = fmt.Errorf("read %s: %w", path, err)
	}
	p.mu.Unlock()
	p.cancel()
}

// err is the first file kopia could not read, if any.
func (p *uploadProgress) err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.firstErr
}
