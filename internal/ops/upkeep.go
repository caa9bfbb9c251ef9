package ops

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// CheckRequest asks for a check of the repository.
type CheckRequest struct {
	// ReadData is the percentage (0–100) of the files whose content is
	// read back, decrypted and checked against its hash.
	ReadData float64 `json:"read_data"`
}

// Validate checks the request.
func (r CheckRequest) Validate() error {
	if r.ReadData < 0 || r.ReadData > 100 {
		return fmt.Errorf("%w: read data %g: give a percentage from 0 to 100, as 10%%", ErrInvalid, r.ReadData)
	}
	return nil
}

// ParsePercent reads a percentage as people write it: 10, 10% or 2.5%.
func ParsePercent(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(s), "%"), 64)
	if err != nil || v < 0 || v > 100 {
		return 0, fmt.Errorf("%w: %q: give a percentage from 0 to 100, as 10%%", ErrInvalid, s)
	}
	return v, nil
}

// Check verifies the repository. It reads the storage through a
// connection of its own with an empty cache (Env.Fresh) where it can; when
// the password can only be typed, through Env.Repository's. Problems found
// are in the result and the error wraps repository.ErrCheckFailed.
func Check(ctx context.Context, env *Env, req CheckRequest, obs Observer) (repository.CheckResult, error) {
	if err := req.Validate(); err != nil {
		return repository.CheckResult{}, err
	}
	log := obs.log(env)
	opts := repository.CheckOptions{ReadData: req.ReadData}
	var res repository.CheckResult
	err := repository.ErrNoPassword
	if env.Fresh != nil {
		res, err = repository.Check(ctx, env.Fresh(), opts)
	}
	if errors.Is(err, repository.ErrNoPassword) && env.Repository != nil {
		if env.Fresh != nil {
			log.Warn("check through the open connection: the password was typed and cannot be read again")
		}
		repo, rerr := env.Repository(ctx, false)
		if rerr != nil {
			return res, rerr
		}
		res, err = repo.Check(ctx, opts)
	}
	log.Info("repository check", "points", res.Points, "files", res.Files, "read_files", res.ReadFiles, "problems", len(res.Problems))
	for _, p := range res.Problems {
		log.Error("repository problem", "what", p.What, "points", strings.Join(p.Points, ","))
	}
	return res, err
}

// ForgetRequest asks for retention: the points of Unit (or of every unit,
// each on its own) that Keep does not keep are forgotten. With Keep empty,
// each unit's lifeboat.retention label decides.
type ForgetRequest struct {
	Unit   string           `json:"unit,omitempty"`
	Keep   policy.Retention `json:"keep"`
	DryRun bool             `json:"dry_run,omitempty"`
}

// Validate checks the request.
func (r ForgetRequest) Validate() error {
	if err := r.Keep.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if r.Unit != "" {
		if u, err := backup.ParseUnit(r.Unit); err != nil || u.Kind == "" {
			return fmt.Errorf("%w: unit %q: write project/NAME, container/NAME or volume/NAME", ErrInvalid, r.Unit)
		}
	}
	return nil
}

// Forget applies retention, newest first, never forgetting a unit's
// newest point, and untags the timeline images of what it forgets.
func Forget(ctx context.Context, env *Env, req ForgetRequest, obs Observer) ([]backup.ForgetResult, error) {
	if err := req.Validate(); err != nil {
		return nil, err
	}
	repo, err := env.Repository(ctx, !req.DryRun)
	if err != nil {
		return nil, err
	}
	var labelled map[string]policy.Retention
	if req.Keep.IsZero() {
		eng, err := env.Engine(ctx)
		if err != nil {
			return nil, err
		}
		units, err := backup.ListWith(ctx, eng, env.Defaults)
		if err != nil {
			return nil, err
		}
		labelled = map[string]policy.Retention{}
		for _, u := range units {
			if !u.Policy.Retention.IsZero() {
				labelled[u.Unit] = u.Policy.Retention
			}
		}
	}
	return backup.Forget(ctx, repo, backup.ForgetOptions{Unit: req.Unit, Keep: req.Keep, Labelled: labelled, DryRun: req.DryRun, Log: obs.log(env), Host: env.Host,
		Engine: func(ctx context.Context) (*engine.Client, error) { return env.Engine(ctx) }})
}

// MaintenanceRequest asks for repository upkeep.
type MaintenanceRequest struct {
	// Quick only compacts indexes and deletes no data.
	Quick bool `json:"quick,omitempty"`
}

// Maintain runs the repository's upkeep and says how much it freed.
func Maintain(ctx context.Context, env *Env, req MaintenanceRequest, obs Observer) (repository.MaintenanceResult, error) {
	repo, err := env.Repository(ctx, true)
	if err != nil {
		return repository.MaintenanceResult{}, err
	}
	res, err := repo.Maintain(ctx, !req.Quick)
	if err == nil {
		obs.log(env).Info("maintenance done", "duration_ms", res.Duration.Milliseconds(), "bytes_freed", max(0, res.BytesBefore-res.BytesAfter))
	}
	return res, err
}
