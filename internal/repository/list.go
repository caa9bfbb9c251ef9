package repository

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
	"github.com/kopia/kopia/snapshot"
)

// Errors of snapshot references.
var (
	ErrNoSuchPoint  = errors.New("no such restore point")
	ErrAmbiguousRef = errors.New("ambiguous restore point")
)

// List returns the complete restore points, newest first; with unit set,
// only that unit's. Checkpoints and other incomplete snapshots never show.
func (r *Repository) List(ctx context.Context, unit string) ([]Point, error) {
	return r.list(ctx, unit, true)
}

// History is List for a job about to write: an unreadable point record is
// ErrDamaged, as the write itself would find it, and never switches this
// process to skipping such records (which would let the write go past
// the damage that `lifeboat repair` must see to first).
func (r *Repository) History(ctx context.Context, unit string) ([]Point, error) {
	return r.list(ctx, unit, false)
}

func (r *Repository) list(ctx context.Context, unit string, skipDamaged bool) ([]Point, error) {
	ms, err := r.manifests(ctx, unit, skipDamaged)
	if err != nil {
		return nil, err
	}
	acked, err := r.acks(ctx)
	if err != nil {
		return nil, err
	}
	points := make([]Point, 0, len(ms))
	for _, m := range ms {
		p := pointOf(m)
		p.Acked = p.Suspect && len(acked[p.ID]) > 0
		points = append(points, p)
	}
	sort.SliceStable(points, func(i, j int) bool { return points[i].Time.After(points[j].Time) })
	drills, err := r.lastDrills(ctx)
	if err != nil {
		// The points are whole without their drills: list them.
		r.log.Warn("drill results not listed", "err", err)
	}
	for i := range points {
		if d, ok := drills[points[i].ID]; ok {
			points[i].LastDrill = &d
		}
	}
	r.markOffsiteLocks(ctx, points)
	return points, nil
}

// recordsDamaged marks an error of kopia's manifest loading (a restore
// point record unreadable) as ErrDamaged, whose hint is Repair: a write
// cannot go past such a record as a listing does.
// A read cut short by cancellation (the job's lease lost, a signal) is
// not damage: kopia reports it in the same words.
func recordsDamaged(err error) error {
	if err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) &&
		strings.Contains(err.Error(), "unable to load manifest contents") {
		return fmt.Errorf("%w: a restore point record is unreadable: %w", ErrDamaged, err)
	}
	return err
}

const ignoreMalformedManifests = "KOPIA_IGNORE_MALFORMED_MANIFEST_CONTENTS"

func (r *Repository) manifests(ctx context.Context, unit string, skipDamaged bool) ([]*snapshot.Manifest, error) {
	var filter map[string]string
	if unit != "" {
		filter = map[string]string{labelUnit: unit}
	}
	ids, err := snapshot.ListSnapshotManifests(ctx, r.rep, nil, filter)
	if !skipDamaged {
		err = recordsDamaged(err)
	}
	if err != nil && skipDamaged && ctx.Err() == nil && strings.Contains(err.Error(), "unable to load manifest contents") && os.Getenv(ignoreMalformedManifests) == "" {
		// One unreadable restore point record (its pack deleted or
		// damaged) fails every listing, unless kopia is told to skip
		// such records. Told only once damage is seen, since skipping
		// would also hide a record lost to a race with another
		// process's compaction, which kopia otherwise retries. The
		// points those records held are lost either way; check counts
		// them.
		r.log.Warn("a restore point record is unreadable: listing the others (run `lifeboat check`)", "err", err)
		os.Setenv(ignoreMalformedManifests, "1")
		ids, err = snapshot.ListSnapshotManifests(ctx, r.rep, nil, filter)
	}
	if err != nil {
		return nil, fmt.Errorf("list restore points: %w", err)
	}
	ms, err := snapshot.LoadSnapshots(ctx, r.rep, ids)
	if err != nil {
		return nil, fmt.Errorf("load restore points: %w", err)
	}
	out := ms[:0]
	for _, m := range ms {
		if m.IncompleteReason == "" && m.Tags[labelUnit] != "" {
			out = append(out, m)
		}
	}
	return out, nil
}

// Resolve finds one restore point from what a user typed: an ID or a unique
// prefix of one, UNIT@latest, or UNIT@TIME (the newest point at or before
// TIME, in RFC 3339 or 2006-01-02T15:04:05 UTC or 2006-01-02). A unit's
// points are this host's unless a host is named, HOST:UNIT@latest: in a
// repository several hosts share, a restore must not bring back another
// host's copy of a unit of the same name unless asked to.
func (r *Repository) Resolve(ctx context.Context, ref string) (Point, error) {
	if unit, when, ok := strings.Cut(ref, "@"); ok {
		return r.resolveUnitRef(ctx, unit, when)
	}
	if ref == "" {
		return Point{}, fmt.Errorf("%w: empty reference", ErrNoSuchPoint)
	}
	points, err := r.List(ctx, "")
	if err != nil {
		return Point{}, err
	}
	var found []Point
	for _, p := range points {
		if p.ID == ref {
			return p, nil
		}
		if strings.HasPrefix(p.ID, ref) {
			found = append(found, p)
		}
	}
	switch len(found) {
	case 0:
		return Point{}, fmt.Errorf("%w %q: list them with `lifeboat snapshots`", ErrNoSuchPoint, ref)
	case 1:
		return found[0], nil
	}
	ids := make([]string, 0, len(found))
	for _, p := range found {
		ids = append(ids, p.ID)
	}
	return Point{}, fmt.Errorf("%w %q matches %s: type more of the ID", ErrAmbiguousRef, ref, strings.Join(ids, ", "))
}

func (r *Repository) resolveUnitRef(ctx context.Context, unit, when string) (Point, error) {
	host, named := r.hostname, false
	if h, u, ok := strings.Cut(unit, ":"); ok {
		host, unit, named = h, u, true
	}
	all, err := r.List(ctx, unit)
	if err != nil {
		return Point{}, err
	}
	if len(all) == 0 {
		return Point{}, fmt.Errorf("%w: unit %q has no restore points (units are written like volume/NAME; see `lifeboat snapshots`)", ErrNoSuchPoint, unit)
	}
	points, err := fromHost(all, unit, host, named)
	if err != nil {
		return Point{}, err
	}
	if when == "latest" {
		return points[0], nil
	}
	t, err := parseTime(when)
	if err != nil {
		return Point{}, err
	}
	for _, p := range points {
		if !p.Time.After(t) {
			return p, nil
		}
	}
	return Point{}, fmt.Errorf("%w: unit %q has no restore point at or before %s", ErrNoSuchPoint, unit, t.Format(time.RFC3339))
}

// fromHost keeps the points of unit that host made, or says which hosts
// have some.
func fromHost(points []Point, unit, host string, named bool) ([]Point, error) {
	var out []Point
	hosts := map[string]bool{}
	for _, p := range points {
		hosts[p.Host] = true
		if p.Host == host {
			out = append(out, p)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	others := make([]string, 0, len(hosts))
	for h := range hosts {
		others = append(others, h)
	}
	sort.Strings(others)
	which := "this host (" + host + ")"
	if named {
		which = "host " + host
	}
	return nil, fmt.Errorf("%w: unit %q has no restore points from %s; it has from %s: name one, as %s:%s@latest (or --from-host %s)",
		ErrNoSuchPoint, unit, which, strings.Join(others, ", "), others[0], unit, others[0])
}

func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.UTC); err == nil {
			if layout == "2006-01-02" {
				t = t.Add(24*time.Hour - time.Nanosecond) // the whole day
			}
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%w: %q is not a time: use latest, RFC 3339 (2026-11-24T15:30:00Z) or a date", ErrNoSuchPoint, s)
}

func (r *Repository) load(ctx context.Context, id string) (*snapshot.Manifest, error) {
	m, err := snapshot.LoadSnapshot(ctx, r.rep, manifest.ID(id))
	if err != nil {
		return nil, fmt.Errorf("load restore point %s: %w", id, err)
	}
	return m, nil
}

// Delete forgets restore points, and their acknowledgements. Their data
// goes at the next maintenance, once no other point shares it; nothing of
// another point is touched.
func (r *Repository) Delete(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	acked, err := r.acks(ctx)
	if err != nil {
		return err
	}
	return repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: "lifeboat:forget"},
		func(ctx context.Context, w repo.RepositoryWriter) error {
			for _, id := range ids {
				if err := w.DeleteManifest(ctx, manifest.ID(id)); err != nil {
					return fmt.Errorf("forget restore point %s: %w", id, err)
				}
				for _, a := range acked[id] {
					if err := w.DeleteManifest(ctx, a); err != nil {
						return fmt.Errorf("forget acknowledgement of %s: %w", id, err)
					}
				}
			}
			return nil
		})
}
