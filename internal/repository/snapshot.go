package repository

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
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
			p := &pass{w: w, si: si, policy: policyTree, prev: complete(prev), counters: opts.Progress}
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
}

func (p *pass) Upload(ctx context.Context, root fs.Entry) error {
	u := upload.NewUploader(p.w)
	u.FailFast = true
	// Docker volumes are users' data: a .kopiaignore or CACHEDIR.TAG inside
	// one must not make files disappear from the backup.
	u.DisableIgnoreRules = true
	fl := startFlusher(ctx, p.w, flushEvery)
	u.Progress = &uploadProgress{c: p.counters, flush: fl}
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
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if m.IncompleteReason != "" {
		return fmt.Errorf("upload incomplete: %s", m.IncompleteReason)
	}
	if n := m.Stats.ErrorCount; n > 0 {
		return fmt.Errorf("upload: %d files could not be read", n)
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

// uploadProgress feeds kopia's upload events into our counters (when
// there are any) and the flusher.
type uploadProgress struct {
	upload.NullUploadProgress
	c     *progress.Counters
	flush *flusher
}

// Enabled is false: in kopia it only starts an estimate of the upload's
// size, a second walk of the whole tree (lstat of every file) whose result
// we never asked for, since the sidecar scan counts the totals. The other
// events arrive all the same.
func (p *uploadProgress) Enabled() bool { return false }

func (p *uploadProgress) CachedFile(_ string, size int64) {
	if p.c != nil {
		p.c.Files.Add(1)
		p.c.Bytes.Add(size)
		p.c.CachedBytes.Add(size)
	}
}

func (p *uploadProgress) HashedBytes(n int64) {
	if p.c != nil {
		p.c.Bytes.Add(n)
	}
}

func (p *uploadProgress) FinishedHashingFile(string, int64) {
	p.flush.hashed()
	if p.c != nil {
		p.c.Files.Add(1)
	}
}

func (p *uploadProgress) Error(string, error, bool) {
	if p.c != nil {
		p.c.Errors.Add(1)
	}
}
