package ops

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/drill"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// DrillRequest asks to prove that a restore point comes back and works.
type DrillRequest struct {
	// Point is UNIT (its newest point), UNIT@latest, UNIT@TIME, an ID or
	// a unique prefix of one.
	Point string `json:"point"`
	// SettleSeconds is how long a container without a healthcheck must
	// keep running to count as up; 0: the default.
	SettleSeconds float64 `json:"settle_seconds,omitempty"`
	// FromHost drills another host's point of UNIT (this host's otherwise).
	FromHost string `json:"from_host,omitempty"`
	// NoWait refuses when another drill of the unit runs.
	NoWait bool `json:"-"`
}

// Validate checks the request, and makes a bare unit its newest point.
func (r *DrillRequest) Validate() error {
	r.Point = strings.TrimSpace(r.Point)
	if r.Point == "" {
		return fmt.Errorf("%w: say which point to drill: UNIT, UNIT@TIME or an ID", ErrInvalid)
	}
	if r.SettleSeconds < 0 || r.SettleSeconds > 3600 {
		return fmt.Errorf("%w: settle %gs: give 0 to 3600 seconds", ErrInvalid, r.SettleSeconds)
	}
	if strings.Contains(r.Point, "/") && !strings.Contains(r.Point, "@") {
		r.Point += "@latest"
	}
	p, err := withHost(r.Point, r.FromHost)
	r.Point = p
	return err
}

// Drill restores the point into a sandbox on the engine, starts it,
// checks its databases, dumps and probes, measures the recovery time,
// removes the sandbox and records the result beside the point. The error
// wraps drill.ErrFailed when a check failed; the result then says which.
func Drill(ctx context.Context, env *Env, req DrillRequest, obs Observer) (drill.Result, error) {
	if err := req.Validate(); err != nil {
		return drill.Result{}, err
	}
	repo, err := env.Repository(ctx, true)
	if err != nil {
		return drill.Result{}, err
	}
	eng, err := env.Engine(ctx)
	if err != nil {
		return drill.Result{}, err
	}
	return drill.Run(ctx, repo, eng, drill.Options{
		Ref: req.Point, Settle: time.Duration(req.SettleSeconds * float64(time.Second)),
		LockDir: env.LockDir(), JournalDir: env.RestoreJournalDir(), NoWait: req.NoWait,
		OnWait: obs.Waiting, Log: obs.log(env), Progress: obs.progress("drill " + req.Point), Shared: env.shared(repo, eng, obs),
	})
}

// Ack accepts the anomaly of a suspect point: retention treats it as any
// other point from then on.
func Ack(ctx context.Context, env *Env, point string) (repository.AckResult, error) {
	if strings.TrimSpace(point) == "" {
		return repository.AckResult{}, fmt.Errorf("%w: say which point to acknowledge: an ID or UNIT@TIME", ErrInvalid)
	}
	repo, err := env.Repository(ctx, true)
	if err != nil {
		return repository.AckResult{}, err
	}
	return repo.Ack(ctx, point)
}
