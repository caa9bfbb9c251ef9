package repository

import (
	"context"
	"fmt"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/maintenance"
	"github.com/kopia/kopia/snapshot/snapshotmaintenance"
)

// MaintenanceResult says what a maintenance run did.
type MaintenanceResult struct {
	Full     bool          `json:"full"`
	Duration time.Duration `json:"duration_ns"`
	// Blobs and bytes in storage before and after the run: what it freed.
	BlobsBefore int   `json:"blobs_before"`
	BytesBefore int64 `json:"bytes_before"`
	BlobsAfter  int   `json:"blobs_after"`
	BytesAfter  int64 `json:"bytes_after"`
}

// storageUsage counts the blobs and bytes the repository keeps in storage.
func storageUsage(ctx context.Context, dr repo.DirectRepository) (n int, size int64, err error) {
	err = dr.BlobReader().ListBlobs(ctx, "", func(m blob.Metadata) error {
		n++
		size += m.Length
		return nil
	})
	if err != nil {
		return 0, 0, fmt.Errorf("list repository blobs: %w", err)
	}
	return n, size, nil
}

// Maintain runs kopia's maintenance: quick (index compaction) or full
// (garbage collection of the data only forgotten points held, after
// kopia's safety margins). It takes over maintenance ownership for this
// host's lifeboat user, since one daemon per repository does the upkeep.
func (r *Repository) Maintain(ctx context.Context, full bool) (MaintenanceResult, error) {
	ctx = withKopiaLogs(ctx, r.log)
	start := time.Now()
	dr, ok := r.rep.(repo.DirectRepository)
	if !ok {
		return MaintenanceResult{}, fmt.Errorf("maintenance needs a direct repository connection")
	}
	res := MaintenanceResult{Full: full}
	var err error
	if res.BlobsBefore, res.BytesBefore, err = storageUsage(ctx, dr); err != nil {
		return MaintenanceResult{}, err
	}
	mode := maintenance.ModeQuick
	if full {
		mode = maintenance.ModeFull
	}
	err = repo.DirectWriteSession(ctx, dr, repo.WriteSessionOptions{Purpose: "lifeboat:maintenance"}, func(ctx context.Context, w repo.DirectRepositoryWriter) error {
		p, err := maintenance.GetParams(ctx, w)
		if err != nil {
			return fmt.Errorf("read maintenance parameters: %w", err)
		}
		extend, err := extendLocks(ctx, w, p)
		if err != nil {
			return err
		}
		if me := w.ClientOptions().UsernameAtHost(); p.Owner != me || extend {
			p.Owner = me
			if err := maintenance.SetParams(ctx, w, p); err != nil {
				return fmt.Errorf("take maintenance ownership: %w", err)
			}
		}
		return snapshotmaintenance.Run(ctx, w, mode, true, maintenance.SafetyFull)
	})
	if err != nil {
		return MaintenanceResult{}, fmt.Errorf("repository maintenance: %w", err)
	}
	if res.BlobsAfter, res.BytesAfter, err = storageUsage(ctx, dr); err != nil {
		return MaintenanceResult{}, err
	}
	res.Duration = time.Since(start)
	return res, nil
}
