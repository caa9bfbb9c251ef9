package ops

import (
	"context"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// recoverUnits restores each point through Restore, in dependency order;
// one that fails is recorded and the rest go on. A unit whose plan cannot
// be read is restored last, in name order: its failure, if any, is then
// Restore's to say.
func recoverUnits(ctx context.Context, env *Env, repo *repository.Repository, points []repository.Point, obs Observer, start time.Time) []RecoveredUnit {
	var plans []recoverUnit
	var out []RecoveredUnit
	for _, p := range points {
		u, err := planUnit(ctx, repo, p)
		if err != nil {
			obs.log(env).Warn("unit's dependencies not read: restored after the others", "unit", p.Unit, "err", err)
		}
		plans = append(plans, u)
	}
	ordered, skipped := orderUnits(plans)
	for _, p := range points {
		if why, ok := skipped[p.Unit]; ok {
			out = append(out, RecoveredUnit{Unit: p.Unit, Point: p.ID, PointTime: p.Time, Status: "skipped", Skipped: why})
		}
	}
	for _, u := range ordered {
		if ctx.Err() != nil {
			out = append(out, RecoveredUnit{Unit: u.point.Unit, Point: u.point.ID, PointTime: u.point.Time, Status: "failed", Error: ctx.Err().Error()})
			continue
		}
		r := recoverOne(ctx, env, u, obs)
		r.RunningMS = time.Since(start).Milliseconds()
		out = append(out, r)
	}
	return out
}

// recoverOne loads the point's images the engine lacks, then restores the
// unit (its volume, for a volume unit): two restores, so the report can
// say where the time went.
func recoverOne(ctx context.Context, env *Env, u recoverUnit, obs Observer) RecoveredUnit {
	r := RecoveredUnit{Unit: u.point.Unit, Point: u.point.ID, PointTime: u.point.Time, Status: "restored"}
	// The error is the result's: the front end reports it, once.
	fail := func(err error) RecoveredUnit {
		r.Status, r.Error = "failed", err.Error()
		return r
	}
	t0 := time.Now()
	if u.volume == "" && len(u.imageIDs) > 0 {
		missing, err := lacksImages(ctx, env, u)
		if err != nil {
			return fail(err)
		}
		if missing {
			res, err := Restore(ctx, env, RestoreRequest{Point: u.point.ID, ImageOnly: true}, obs)
			if err != nil {
				return fail(err)
			}
			if res.Unit != nil {
				r.Images = res.Unit.Images
			}
		}
	}
	t1 := time.Now()
	r.ImagesMS = t1.Sub(t0).Milliseconds()
	req := RestoreRequest{Point: u.point.ID}
	if u.volume != "" {
		req.Volume = u.volume
	}
	res, err := Restore(ctx, env, req, obs)
	r.RestoreMS = time.Since(t1).Milliseconds()
	if err != nil {
		return fail(err)
	}
	switch {
	case res.Unit != nil:
		r.Containers, r.Volumes = res.Unit.Containers, res.Unit.Volumes
		r.Images = append(r.Images, res.Unit.Images...)
	case res.Files != nil:
		r.Volumes = []string{res.Files.Volume}
	}
	return r
}

// lacksImages says whether the engine lacks an image the point holds.
func lacksImages(ctx context.Context, env *Env, u recoverUnit) (bool, error) {
	eng, err := env.Engine(ctx)
	if err != nil {
		return false, err
	}
	for _, id := range u.imageIDs {
		if has, err := eng.HasImage(ctx, id); err != nil || !has {
			return !has, err
		}
	}
	return false, nil
}
