package backup

import (
	"context"
	"log/slog"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/anomaly"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// Judge compares p with history, its unit's earlier points newest first,
// as the anomaly guard does after every backup.
func Judge(p repository.Point, history []repository.Point, t anomaly.Thresholds) []anomaly.Finding {
	hs := make([]anomaly.Stats, 0, len(history))
	for _, h := range history {
		if h.ID != p.ID {
			hs = append(hs, stats(h))
		}
	}
	return anomaly.Evaluate(stats(p), hs, t)
}

func stats(p repository.Point) anomaly.Stats {
	added := p.AddedBytes
	if added == 0 {
		added = -1 // made before lifeboat kept it
	}
	return anomaly.Stats{Files: p.Files, Bytes: p.Bytes, Added: added,
		Duration: time.Duration(p.DurationMS) * time.Millisecond, Dumps: p.Dumps, Good: p.Good()}
}

// judge reads the unit's history now, before its new point exists, and
// returns what the repository asks about the new point before saving it.
// A history that cannot be read judges nothing: the backup itself is not
// at fault. images gives the bytes of image archives the backup read:
// they are not counted as the unit's data stored anew.
func judge(ctx context.Context, repo *repository.Repository, unit string, t anomaly.Thresholds, log *slog.Logger, images func() int64) func(repository.Point) []string {
	if t.Off {
		return nil
	}
	history, err := repo.History(ctx, unit)
	if err != nil {
		log.Warn("anomaly guard skipped: the unit's earlier points could not be listed", "unit", unit, "err", err)
		return nil
	}
	return func(p repository.Point) []string {
		if p.AddedBytes > 0 {
			// Stays known (above 0): the point stored its records at least.
			p.AddedBytes = max(1, p.AddedBytes-images())
		}
		var reasons []string
		for _, f := range Judge(p, history, t) {
			reasons = append(reasons, f.Message)
		}
		return reasons
	}
}
