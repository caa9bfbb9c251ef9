package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/replicate"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

// ReplicateRequest asks for an offsite copy of the repository.
type ReplicateRequest struct {
	To string `json:"to"` // s3://BUCKET/PREFIX or a directory
	// Delete also deletes from the copy what maintenance deleted here.
	Delete bool `json:"delete,omitempty"`
	// LockMode (governance or compliance) and LockPeriod (30d, 720h) put
	// S3 object-lock retention on every blob of the copy: written blobs
	// get it, blobs already there get it extended. Both or neither.
	LockMode   string `json:"lock_mode,omitempty"`
	LockPeriod string `json:"lock_period,omitempty"`
}

// Validate checks the request.
func (r ReplicateRequest) Validate() error {
	if strings.TrimSpace(r.To) == "" {
		return fmt.Errorf("%w: say where to copy the repository: --to s3://BUCKET/PREFIX (or offsite.to in the config file)", ErrInvalid)
	}
	_, err := r.lock()
	return err
}

// lock is the request's object lock; the zero Lock when none is asked for.
func (r ReplicateRequest) lock() (replicate.Lock, error) {
	if r.LockMode == "" && r.LockPeriod == "" {
		return replicate.Lock{}, nil
	}
	return ParseLock(r.To, r.LockMode, r.LockPeriod)
}

// ParseLock checks an object lock for the copy at to: a mode, governance
// or compliance, and a period of at least a day (30d, 720h), on S3.
func ParseLock(to, mode, period string) (replicate.Lock, error) {
	l, err := replicate.ParseLock(mode, period)
	if err != nil {
		return l, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if !repository.IsS3(to) {
		return l, fmt.Errorf("%w: an object lock needs an S3 copy: --to s3://BUCKET/PREFIX, in a bucket made with object lock", ErrInvalid)
	}
	return l, nil
}

// ReplicateResult is what a copy sent.
type ReplicateResult struct {
	To string `json:"to"`
	replicate.Stats
}

// Replicate copies the repository to req.To: only what the copy lacks,
// packs first and the format blob last, so a copy cut at any moment is
// still the previous one and the next run completes it.
func Replicate(ctx context.Context, env *Env, req ReplicateRequest, obs Observer) (ReplicateResult, error) {
	res := ReplicateResult{To: req.To}
	if err := req.Validate(); err != nil {
		return res, err
	}
	lock, _ := req.lock()
	// A locked run records its lock in the repository (a point-in-time
	// view cannot take that write, and is refused here).
	repo, err := env.Repository(ctx, lock.On())
	if err != nil {
		return res, err
	}
	src, err := repo.Blobs()
	if err != nil {
		return res, err
	}
	dst, loc, err := repository.TargetStorage(ctx, req.To)
	if err != nil {
		return res, fmt.Errorf("replicate: %w", err)
	}
	defer dst.Close(context.WithoutCancel(ctx))
	if loc.Long() == repo.Location().Long() {
		return res, fmt.Errorf("%w: replicate to %s: that is the repository itself", ErrInvalid, loc)
	}
	if lock.On() {
		// kopia would retry each refused write ten times before saying
		// the bucket has no lock; one request says it at once.
		probe, err := repository.OpenLockProbe(ctx, req.To)
		if err != nil {
			return res, fmt.Errorf("replicate: %w", err)
		}
		if _, err := probe.BucketLock(ctx); err != nil {
			return res, fmt.Errorf("replicate with --lock-mode: %w", err)
		}
	}
	var points []string
	if lock.On() {
		// Listed before the copy lists the blobs: every point known here
		// is then in the copy, and locked with it.
		if points, err = pointIDs(ctx, repo); err != nil {
			return res, fmt.Errorf("replicate: %w", err)
		}
	}
	c := obs.progress("replicate to " + req.To)
	st, err := replicate.Copy(ctx, src, dst, replicate.Options{Delete: req.Delete, Lock: lock, Progress: func(p replicate.Progress) {
		// Lets the end-to-end test cut the server in the middle of a copy.
		failpoint.Sleep("replicate-slow", 500*time.Millisecond)
		c.TotalFiles.Store(p.BlobsToSend)
		c.TotalBytes.Store(p.BytesToSend)
		c.Files.Store(p.BlobsSent)
		c.Bytes.Store(p.BytesSent)
	}})
	res.Stats = st
	switch {
	case errors.Is(err, replicate.ErrOtherRepository):
		return res, fmt.Errorf("replicate to %s: %w: choose an empty prefix, or one that holds a copy of this repository", loc.Long(), err)
	case err != nil && ctx.Err() == nil:
		return res, fmt.Errorf("replicate to %s: %w (sent %d blobs, %s, before that; the copy is still the previous one, and the next run goes on from there)",
			loc.Long(), err, st.BlobsSent, ui.Bytes(st.BytesSent))
	case err != nil:
		return res, err
	}
	if st.LockedUntil != nil {
		recordLock(ctx, env, obs, repo, repository.ReplicationRecord{To: loc.Long(), Time: time.Now().UTC(), LockedUntil: *st.LockedUntil, Points: points})
	}
	obs.log(env).Info("replicated", "to", loc.Long(), "blobs_sent", st.BlobsSent, "bytes_sent", st.BytesSent,
		"blobs_already_there", st.BlobsPresent, "blobs_deleted", st.BlobsDeleted, "blobs_lock_extended", st.BlobsExtended,
		"duration_ms", st.Duration.Milliseconds())
	return res, nil
}

// pointIDs are the IDs of every point the repository holds.
func pointIDs(ctx context.Context, repo *repository.Repository) ([]string, error) {
	points, err := repo.List(ctx, "")
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(points))
	for i, p := range points {
		ids[i] = p.ID
	}
	return ids, nil
}

// recordLock records a locked run's date for its points. The copy is
// whole and locked either way: a record that cannot be written only
// leaves the dates shown behind, so it is a warning.
func recordLock(ctx context.Context, env *Env, obs Observer, repo *repository.Repository, rec repository.ReplicationRecord) {
	if err := repo.RecordReplication(ctx, rec); err != nil {
		obs.log(env).Warn("offsite lock dates not recorded", "to", rec.To, "err", err)
	}
}
