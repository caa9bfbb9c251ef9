package repository

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
)

// Restore drills are recorded beside the points they proved, as kopia
// manifests of their own type (not snapshots: no listing of points or
// retention sees them), labelled with the point and unit, so any host
// that opens the repository sees them.
const (
	drillType        = "lifeboat-drill"
	drillLabelPoint  = "lifeboat.point"
	drillLabelUnit   = "lifeboat.unit"
	drillLabelPassed = "lifeboat.passed"
	drillLabelRTO    = "lifeboat.rto_ms"
	drillLabelTime   = "lifeboat.time"
)

// DrillRecord is one drill to record: the summary listings show, and
// Detail, the drill's whole result, stored as JSON.
type DrillRecord struct {
	Point  string
	Unit   string
	Time   time.Time
	Passed bool
	RTOMS  int64
	Detail any
}

// DrillSummary is a point's last drill as listings show it.
type DrillSummary struct {
	Time   time.Time `json:"time"`
	Passed bool      `json:"passed"`
	RTOMS  int64     `json:"rto_ms"`
}

// RecordDrill stores a drill's result beside its point.
func (r *Repository) RecordDrill(ctx context.Context, d DrillRecord) error {
	labels := map[string]string{
		manifest.TypeLabelKey: drillType,
		drillLabelPoint:       d.Point,
		drillLabelUnit:        d.Unit,
		drillLabelPassed:      strconv.FormatBool(d.Passed),
		drillLabelRTO:         strconv.FormatInt(d.RTOMS, 10),
		drillLabelTime:        d.Time.UTC().Format(time.RFC3339Nano),
	}
	err := repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: "lifeboat:drill"},
		func(ctx context.Context, w repo.RepositoryWriter) error {
			_, err := w.PutManifest(ctx, labels, d.Detail)
			return err
		})
	if err != nil {
		return fmt.Errorf("record drill of %s: %w", d.Point, err)
	}
	return nil
}

// lastDrills maps point IDs to their newest drill; only labels are read.
func (r *Repository) lastDrills(ctx context.Context) (map[string]DrillSummary, error) {
	ms, err := r.rep.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: drillType})
	if err != nil {
		return nil, fmt.Errorf("list drills: %w", err)
	}
	out := map[string]DrillSummary{}
	for _, m := range ms {
		s := drillSummaryOf(m)
		if prev, ok := out[m.Labels[drillLabelPoint]]; !ok || s.Time.After(prev.Time) {
			out[m.Labels[drillLabelPoint]] = s
		}
	}
	return out, nil
}

func drillSummaryOf(m *manifest.EntryMetadata) DrillSummary {
	s := DrillSummary{Time: m.ModTime, Passed: m.Labels[drillLabelPassed] == "true"}
	if t, err := time.Parse(time.RFC3339Nano, m.Labels[drillLabelTime]); err == nil {
		s.Time = t
	}
	s.RTOMS, _ = strconv.ParseInt(m.Labels[drillLabelRTO], 10, 64)
	return s
}

// LastDrill reads the newest drill of point into detail (the Detail it
// was recorded with); false when the point was never drilled.
func (r *Repository) LastDrill(ctx context.Context, point string, detail any) (DrillSummary, bool, error) {
	ms, err := r.rep.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: drillType, drillLabelPoint: point})
	if err != nil {
		return DrillSummary{}, false, fmt.Errorf("list drills of %s: %w", point, err)
	}
	var last *manifest.EntryMetadata
	for _, m := range ms {
		if last == nil || drillSummaryOf(m).Time.After(drillSummaryOf(last).Time) {
			last = m
		}
	}
	if last == nil {
		return DrillSummary{}, false, nil
	}
	if _, err := r.rep.GetManifest(ctx, last.ID, detail); err != nil {
		return DrillSummary{}, false, fmt.Errorf("read drill of %s: %w", point, err)
	}
	return drillSummaryOf(last), true, nil
}
