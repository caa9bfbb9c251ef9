package ops

import (
	"context"
	"fmt"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/priority"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
)

// BackupRequest asks for restore points of units.
type BackupRequest struct {
	Units       []string `json:"units,omitempty"` // as typed: project/NAME, container/NAME, volume/NAME or NAME
	All         bool     `json:"all,omitempty"`
	Consistency string   `json:"consistency,omitempty"` // "" or auto: the labels decide
	Images      string   `json:"images,omitempty"`
	Registry    string   `json:"registry,omitempty"`
	// Trigger says why: manual, schedule, missed, api.
	Trigger string `json:"-"`
	// NoWait refuses a unit whose lock another job holds.
	NoWait bool `json:"-"`
	// Parallel is how many units are backed up at once: 0 the default
	// (backup.DefaultParallel), 1 one after another.
	Parallel int `json:"parallel,omitempty"`
	// Priority is low (the default: lifeboat yields the CPU to the
	// containers except while a unit is frozen) or normal.
	Priority string `json:"priority,omitempty"`
}

// Validate checks the request without touching anything.
func (r *BackupRequest) Validate() error {
	if r.All && len(r.Units) > 0 {
		return fmt.Errorf("%w: give units or all, not both", ErrInvalid)
	}
	if !r.All && len(r.Units) == 0 {
		return fmt.Errorf("%w: say what to back up: UNIT... (project/NAME, container/NAME, volume/NAME) or --all", ErrInvalid)
	}
	for _, u := range r.Units {
		if _, err := backup.ParseUnit(u); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	if r.Consistency != "" {
		if err := policy.CheckMode(r.Consistency); err != nil {
			return fmt.Errorf("%w: consistency: %w", ErrInvalid, err)
		}
	}
	if r.Images != "" {
		if err := policy.CheckImages(r.Images); err != nil {
			return fmt.Errorf("%w: images: %w", ErrInvalid, err)
		}
	}
	if r.Parallel < 0 || r.Parallel > backup.MaxParallel {
		return fmt.Errorf("%w: parallel %d: give 1 to %d units at once (0: the default, %d)", ErrInvalid, r.Parallel, backup.MaxParallel, backup.DefaultParallel)
	}
	if err := priority.Check(r.Priority); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if r.Trigger == "" {
		r.Trigger = "manual"
	}
	return nil
}

// Backup makes a restore point of each unit asked for, req.Parallel at
// once; a unit that fails does not stop the others. The error joins every
// unit's failure (backup.ErrPartial when some succeeded).
func Backup(ctx context.Context, env *Env, req BackupRequest, obs Observer) ([]backup.Result, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	// The repository opens (kopia's key derivation: the longest step of
	// a small backup) while the engine connects.
	repo := env.opening(ctx)
	eng, err := env.Engine(ctx)
	if err != nil {
		return nil, err
	}
	shared, closeLeases := env.earlyShared(ctx, repo, eng, obs)
	defer closeLeases()
	res, err := backup.Run(ctx, repo, eng, backup.Options{
		Units: req.Units, All: req.All, Consistency: req.Consistency, Images: req.Images, Registry: req.Registry,
		Trigger: req.Trigger, Defaults: env.Defaults, Version: env.Version, Log: obs.log(env),
		JournalDir: env.JournalDir(), HelperDir: env.HelperDir(), StageDir: env.StageDir(), LockDir: env.LockDir(), MemoDir: env.MemoDir(), NoWait: req.NoWait, Job: obs.Job, OnWait: obs.Waiting,
		OnStart: func(unit string, c *progress.Counters) {
			if obs.Progress != nil {
				obs.Progress(unit, c)
			}
		},
		OnDone: obs.UnitDone, Parallel: req.Parallel, Priority: req.Priority, Shared: shared, Host: env.Host, EngineName: env.EngineName,
	})
	if _, rerr := repo(); rerr != nil {
		// Every unit failed on it: said once.
		return nil, rerr
	}
	return res, err
}
