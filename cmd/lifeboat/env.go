package main

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/ui"
)

// cliEnv is the operations' environment for one command: the repository
// is opened and the engine connected on first use, and both are closed
// when the command ends.
type cliEnv struct {
	ops.Env
	repo *repository.Repository
	eng  *engine.Client
}

// env makes a command's environment. create lets a write open create the
// embedded default repository on first use, as backup does.
func (g *globalOptions) env(cmd *cobra.Command, create bool) *cliEnv {
	e := &cliEnv{}
	e.Env = ops.Env{StateDir: g.stateDir, Version: version, Log: g.log,
		// Commands on one of many engines record and find points as
		// serve does: under the engine's name.
		EngineName: g.engineHost(), Host: g.engineHost(),
		Fresh: func() repository.Options { return g.repoOptions(true) },
		Repository: func(ctx context.Context, write bool) (*repository.Repository, error) {
			if write && !g.pit.IsZero() {
				// Refused before anything starts, also when a read
				// opened the view first.
				return nil, repository.CheckPointInTime(g.repoOptions(false))
			}
			if e.repo != nil {
				return e.repo, nil
			}
			var err error
			start := time.Now()
			if write && create {
				e.repo, err = g.openOrCreateRepository(ctx, cmd.ErrOrStderr())
			} else {
				e.repo, err = g.openRepository(ctx, !write)
			}
			g.log.Debug("repository opened", "ms", time.Since(start).Milliseconds(), "err", err)
			return e.repo, err
		},
		Engine: func(ctx context.Context) (*engine.Client, error) {
			if e.eng != nil {
				return e.eng, nil
			}
			var err error
			start := time.Now()
			e.eng, err = g.connectEngine(ctx)
			g.log.Debug("engine connected", "ms", time.Since(start).Milliseconds(), "err", err)
			return e.eng, err
		},
	}
	return e
}

// Close closes what was opened; it runs after the operation, also after a
// cancelled one.
func (e *cliEnv) Close(ctx context.Context) {
	if e.repo != nil {
		e.repo.Close(context.WithoutCancel(ctx))
	}
	if e.eng != nil {
		e.eng.Close()
	}
}

// observer shows an operation's progress on the command's stderr (a
// terminal only) and says when it waits for a unit's lock.
func (g *globalOptions) observer(cmd *cobra.Command) (ops.Observer, *ui.Progress) {
	pr := ui.NewProgress(cmd.ErrOrStderr(), g.showProgress())
	return ops.Observer{
		Progress: func(label string, c *progress.Counters) { pr.Track(label, c) },
		Waiting:  g.waitNotice(func(s string) { pr.Println(cmd.ErrOrStderr(), s) }),
	}, pr
}
