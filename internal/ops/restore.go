package ops

import (
	"context"
	"fmt"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/priority"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// RestoreResult says what a restore did, or with a dry run would do: one
// of its parts is set, by kind.
type RestoreResult struct {
	Kind  RestoreKind         `json:"kind"`
	Point string              `json:"point"` // the ID of the point restored
	Files *restore.Result     `json:"files,omitempty"`
	Unit  *restore.UnitResult `json:"unit,omitempty"`
	Dump  *restore.DumpResult `json:"dump,omitempty"`
	Plan  *restore.Plan       `json:"plan,omitempty"`
}

// Summary is the part that is set: what `restore --json` prints.
func (r RestoreResult) Summary() any {
	switch {
	case r.Plan != nil:
		return r.Plan
	case r.Unit != nil:
		return r.Unit
	case r.Dump != nil:
		return r.Dump
	case r.Files != nil:
		return r.Files
	}
	return nil
}

// Restore validates req and carries it out: into a directory, a volume,
// the whole unit (or a copy of it, or one container), the point's images,
// or a container's dumps into a running database; or, with DryRun, only
// says what that would create, replace or refuse (restore.ErrConflict when
// it would be refused), and changes nothing. A restore into Docker holds
// the locks of every unit it writes for as long as it runs.
func Restore(ctx context.Context, env *Env, req RestoreRequest, obs Observer) (RestoreResult, error) {
	kind, err := req.Validate(env)
	if err != nil {
		return RestoreResult{}, err
	}
	// Someone waits for a restore: normal priority, even beside a
	// backup in the background.
	defer priority.Urgent()()
	repo, err := env.Repository(ctx, false)
	if err != nil {
		return RestoreResult{}, err
	}
	res := RestoreResult{Kind: kind, Point: req.Point}
	ro := restore.Options{Ref: req.Point, Volume: req.Volume, Container: req.Container, ImageOnly: req.ImageOnly, Path: req.Path,
		Target: req.Target, As: req.As, Force: req.Force, WithUsers: req.WithUsers,
		ComposeDir: req.ComposeDir, JournalDir: env.RestoreJournalDir(), HelperDir: env.HelperDir(), StageDir: env.StageDir(), Log: obs.log(env)}
	ro.Ports, _ = engine.ParsePortPolicy(req.Ports) // validated above
	if kind == IntoDirectory && !req.DryRun {
		ro.Progress = obs.progress("restore " + req.Point)
		r, err := restore.ToDirectory(ctx, repo, ro)
		res.Point, res.Files = r.ID, &r
		return res, err
	}
	eng, err := env.Engine(ctx)
	if err != nil {
		return res, err
	}
	if req.DryRun {
		return dryRun(ctx, repo, eng, ro, res)
	}
	locks, err := lockRestore(ctx, env, repo, eng, &ro, req, obs)
	if err != nil {
		return res, err
	}
	defer func() {
		if err := locks.Release(); err != nil {
			obs.log(env).Warn("unit locks not released cleanly", "err", err)
		}
	}()
	res.Point = ro.Ref
	ro.Progress = obs.progress("restore " + req.Point)
	switch kind {
	case IntoVolume:
		r, err := restore.ToVolume(ctx, repo, eng, ro)
		res.Files = &r
		return res, err
	case LoadDump:
		r, err := restore.LoadDumps(ctx, repo, eng, ro, req.Into)
		res.Dump = &r
		return res, err
	}
	r, err := restore.ToUnit(ctx, repo, eng, ro)
	res.Unit = &r
	return res, err
}

func dryRun(ctx context.Context, repo *repository.Repository, eng *engine.Client, ro restore.Options, res RestoreResult) (RestoreResult, error) {
	p, err := restore.DryRun(ctx, repo, eng, ro)
	if err != nil {
		return res, err
	}
	res.Plan = &p
	if len(p.Refused) > 0 {
		return res, fmt.Errorf("%w: the restore would be refused: %s", restore.ErrConflict, strings.Join(p.Refused, "; "))
	}
	return res, nil
}

// lockRestore takes the locks of the units a restore of ro.Ref writes, and
// pins ro.Ref to the point it names now: a point made by the backup it
// waited for is not the one that was asked for.
func lockRestore(ctx context.Context, env *Env, repo *repository.Repository, eng *engine.Client, ro *restore.Options, req RestoreRequest, obs Observer) (*unitlock.Set, error) {
	p, err := repo.Resolve(ctx, ro.Ref)
	if err != nil {
		return nil, err
	}
	scope := backup.RestoreScope{Volume: req.Volume, As: req.As, Target: req.Target, ImageOnly: req.ImageOnly, Dump: req.Dump, Into: req.Into}
	units, err := backup.RestoreLocks(ctx, eng, p, scope)
	if err != nil {
		return nil, err
	}
	set, err := unitlock.AcquireAll(ctx, env.LockDir(), units, unitlock.Options{Wait: !req.NoWait, Operation: unitlock.Restore, Job: obs.Job, OnWait: obs.Waiting, Shared: env.shared(repo, eng, obs)})
	if err != nil {
		return nil, err
	}
	ro.Ref = p.ID
	return set, nil
}
