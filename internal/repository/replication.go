package repository

import (
	"context"
	"fmt"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
)

// A locked replication is recorded in the source repository, as a kopia
// manifest of its own type: where it went, until when it locked the blobs
// of the points the source held when it began, and which points those
// were. Every run locks or extends every blob those points need, so a
// point's offsite lock is the newest run's that knew it: a point
// replicated before the last run shares that run's date, one made after
// it has none yet. The record lives beside the points (not in the
// daemon's state) so the CLI, the daemon and a host that opens a copy
// see the same dates, and replicate copies it offsite with the rest.
const (
	replicationType       = "lifeboat-replication"
	replicationLabelTo    = "lifeboat.to"
	replicationLabelUntil = "lifeboat.locked_until"
	replicationLabelTime  = "lifeboat.time"
	replicationPurpose    = "lifeboat:replication"
)

// ReplicationRecord is one locked replication.
type ReplicationRecord struct {
	To          string    `json:"to"` // s3://BUCKET/PREFIX at ENDPOINT
	Time        time.Time `json:"time"`
	LockedUntil time.Time `json:"locked_until"`
	// Points are the IDs of the points the source held when the run
	// began: every blob they need was locked until LockedUntil or later.
	Points []string `json:"points"`
}

// RecordReplication stores a locked replication, replacing the earlier
// records of the same destination: only the newest run's date counts.
func (r *Repository) RecordReplication(ctx context.Context, rec ReplicationRecord) error {
	labels := map[string]string{
		manifest.TypeLabelKey: replicationType,
		replicationLabelTo:    rec.To,
		replicationLabelUntil: rec.LockedUntil.UTC().Format(time.RFC3339),
		replicationLabelTime:  rec.Time.UTC().Format(time.RFC3339Nano),
	}
	err := repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: replicationPurpose},
		func(ctx context.Context, w repo.RepositoryWriter) error {
			old, err := w.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: replicationType, replicationLabelTo: rec.To})
			if err != nil {
				return err
			}
			if _, err := w.PutManifest(ctx, labels, rec); err != nil {
				return err
			}
			for _, m := range old {
				if err := w.DeleteManifest(ctx, m.ID); err != nil {
					return err
				}
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("record replication to %s: %w", rec.To, err)
	}
	return nil
}

// offsiteLocks maps point IDs to the date until which an offsite copy of
// them cannot be removed: per destination the newest record counts, and
// over destinations the latest date (one copy standing is enough).
func offsiteLocks(recs []ReplicationRecord) map[string]time.Time {
	newest := map[string]ReplicationRecord{}
	for _, rec := range recs {
		if prev, ok := newest[rec.To]; !ok || rec.Time.After(prev.Time) {
			newest[rec.To] = rec
		}
	}
	out := map[string]time.Time{}
	for _, rec := range newest {
		if !rec.LockedUntil.After(rec.Time) {
			continue
		}
		for _, id := range rec.Points {
			if rec.LockedUntil.After(out[id]) {
				out[id] = rec.LockedUntil
			}
		}
	}
	return out
}

// replicationRecords reads the newest record of each destination.
func (r *Repository) replicationRecords(ctx context.Context) ([]ReplicationRecord, error) {
	ms, err := r.rep.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: replicationType})
	if err != nil {
		return nil, fmt.Errorf("list replications: %w", err)
	}
	newest := map[string]*manifest.EntryMetadata{}
	for _, m := range ms {
		to := m.Labels[replicationLabelTo]
		if prev, ok := newest[to]; !ok || m.ModTime.After(prev.ModTime) {
			newest[to] = m
		}
	}
	var out []ReplicationRecord
	for _, m := range newest {
		var rec ReplicationRecord
		if _, err := r.rep.GetManifest(ctx, m.ID, &rec); err != nil {
			return nil, fmt.Errorf("read replication to %s: %w", m.Labels[replicationLabelTo], err)
		}
		out = append(out, rec)
	}
	return out, nil
}

// markOffsiteLocks sets each point's offsite lock date.
func (r *Repository) markOffsiteLocks(ctx context.Context, points []Point) {
	recs, err := r.replicationRecords(ctx)
	if err != nil {
		// The points are whole without their lock dates: list them.
		r.log.Warn("offsite lock dates not listed", "err", err)
		return
	}
	locks := offsiteLocks(recs)
	for i := range points {
		if t, ok := locks[points[i].ID]; ok {
			points[i].OffsiteLockedUntil = &t
		}
	}
}
