package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/registry"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// ForgetOptions say which restore points to forget.
type ForgetOptions struct {
	Unit string // "" for every unit, each on its own
	Keep policy.Retention
	// Labelled, used when Keep is empty, is each unit's own retention
	// from its lifeboat.retention label; units without one are kept whole.
	Labelled map[string]policy.Retention
	DryRun   bool
	// Host, when set, limits retention to the points recorded under it:
	// one engine's, where serve protects many and their units' names
	// may be the same.
	Host string
	Log  *slog.Logger
	// Engine gives the Docker Engine when forgotten points have timeline
	// images to untag (nil skips that). The client stays the caller's:
	// the daemon's is shared by every job.
	Engine func(ctx context.Context) (*engine.Client, error)
}

// ForgetResult is one restore point's verdict.
type ForgetResult struct {
	repository.Point
	Keep    bool     `json:"keep"`
	Reasons []string `json:"reasons,omitempty"`
	Untag   []string `json:"untagged,omitempty"` // timeline images whose tags went with it
}

// Forget applies a retention policy to every unit's restore points,
// newest first, and forgets the rest — never a unit's newest point, nor
// the good points before an unacknowledged suspect one (see verdicts) —
// with their timeline image tags.
func Forget(ctx context.Context, repo *repository.Repository, opts ForgetOptions) ([]ForgetResult, error) {
	if opts.Keep.IsZero() && len(opts.Labelled) == 0 {
		return nil, errors.New("no --keep-… given and no unit has a lifeboat.retention label: say what to keep (--keep-last 3, --keep-daily 7, …)")
	}
	points, err := repo.List(ctx, opts.Unit)
	if err != nil {
		return nil, err
	}
	byUnit := map[string][]repository.Point{}
	var order []string
	for _, p := range points {
		if opts.Host != "" && p.Host != opts.Host {
			continue
		}
		if _, ok := byUnit[p.Unit]; !ok {
			order = append(order, p.Unit)
		}
		byUnit[p.Unit] = append(byUnit[p.Unit], p)
	}
	var out []ForgetResult
	var drop []string
	for _, unit := range order {
		ps := byUnit[unit]
		keep := opts.Keep
		if keep.IsZero() {
			var ok bool
			if keep, ok = opts.Labelled[unit]; !ok || keep.IsZero() {
				for _, p := range ps {
					out = append(out, ForgetResult{Point: p, Keep: true, Reasons: []string{"no retention policy"}})
				}
				continue
			}
		}
		for _, r := range verdicts(ps, keep) {
			out = append(out, r)
			if !r.Keep {
				drop = append(drop, r.ID)
			}
		}
	}
	if opts.DryRun || len(drop) == 0 {
		return out, nil
	}
	untag, err := timelineTags(ctx, repo, out)
	if err != nil {
		return out, err
	}
	if err := repo.Delete(ctx, drop); err != nil {
		return out, err
	}
	return out, removeTags(ctx, opts, untag, out)
}

// KeptForAnomaly is the reason retention gives for a good point it keeps
// because a newer point of its unit is suspect and not acknowledged.
const KeptForAnomaly = "kept: last good point before unacknowledged anomaly"

// verdicts applies keep to one unit's points, newest first. Before every
// suspect point nobody acknowledged, the newest good points are kept, as
// many as keep's last (at least one): the data as it was before the
// damage must outlive the damaged points that push it out.
func verdicts(ps []repository.Point, keep policy.Retention) []ForgetResult {
	times := make([]time.Time, len(ps))
	for i, p := range ps {
		times[i] = p.Time
	}
	out := make([]ForgetResult, len(ps))
	for i, why := range keep.Keep(times) {
		out[i] = ForgetResult{Point: ps[i], Keep: len(why) > 0, Reasons: why}
	}
	n := max(keep.Last, 1)
	for s, p := range ps {
		if p.Good() {
			continue
		}
		good := 0
		for i := s + 1; i < len(ps) && good < n; i++ {
			if !ps[i].Good() {
				continue
			}
			good++
			if !out[i].Keep {
				out[i].Keep, out[i].Reasons = true, []string{KeptForAnomaly}
			}
		}
	}
	return out
}

// timelineTags reads, before the points go, which timeline images each
// forgotten point made.
func timelineTags(ctx context.Context, repo *repository.Repository, rs []ForgetResult) (map[string][]string, error) {
	tags := map[string][]string{}
	for _, r := range rs {
		if r.Keep || r.Kind == "volume" {
			continue
		}
		b, err := repo.ReadFile(ctx, r.ID, layout.ManifestPath)
		if err != nil {
			return nil, err
		}
		m, err := layout.ParseManifest(b)
		if err != nil {
			return nil, err
		}
		for _, c := range m.Containers {
			if c.Timeline != nil {
				tags[r.ID] = append(tags[r.ID], c.Timeline.Ref)
			}
			if c.TimelinePushed != "" {
				tags[r.ID] = append(tags[r.ID], c.TimelinePushed)
			}
		}
	}
	return tags, nil
}

func removeTags(ctx context.Context, opts ForgetOptions, tags map[string][]string, rs []ForgetResult) error {
	if len(tags) == 0 || opts.Engine == nil {
		return nil
	}
	eng, err := opts.Engine(ctx)
	if err != nil {
		return fmt.Errorf("points forgotten, but their timeline images could not be untagged: %w", err)
	}
	var errs []error
	for i := range rs {
		for _, ref := range tags[rs[i].ID] {
			if err := eng.Untag(ctx, ref); err != nil {
				errs = append(errs, err)
				continue
			}
			if host, _, _, err := registry.Split(ref); err == nil {
				// A pushed timeline image: its tag goes from the registry
				// too (freeing the data is the registry's own GC).
				cred, err := registry.CredentialsFor(host)
				if err == nil {
					err = registry.DeleteTag(ctx, ref, cred)
				}
				if err != nil {
					errs = append(errs, err)
					continue
				}
			}
			rs[i].Untag = append(rs[i].Untag, ref)
		}
	}
	return errors.Join(errs...)
}
