package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// lockDir holds the per-unit locks that keep two jobs of one unit apart.
func (g *globalOptions) lockDir() string { return filepath.Join(g.stateDir, "locks") }

// waitNotice says on stderr that a job waits for a unit's lock, and for
// whom: a JSON status line with --json, nothing with -q. println draws
// around a progress line when one is shown.
func (g *globalOptions) waitNotice(println func(string)) func(unitlock.Holder) {
	if println == nil {
		println = func(s string) { fmt.Fprintln(os.Stderr, s) }
	}
	return func(h unitlock.Holder) {
		switch {
		case g.quiet:
		case g.json:
			b, _ := json.Marshal(struct {
				MessageType string          `json:"message_type"`
				Action      string          `json:"action"`
				Holder      unitlock.Holder `json:"holder"`
			}{"status", "waiting", h})
			println(string(b))
		default:
			println("lifeboat: waiting for " + h.String() + "… (--no-wait refuses instead)")
		}
	}
}

// lockRestore takes the locks of the units a restore of ro.Ref writes, and
// pins ro.Ref to the point it names now: a point made by the backup it
// waited for is not the one that was asked for.
func (g *globalOptions) lockRestore(ctx context.Context, repo *repository.Repository, eng *engine.Client, ro *restore.Options, scope backup.RestoreScope, noWait bool, println func(string)) (*unitlock.Set, error) {
	p, err := repo.Resolve(ctx, ro.Ref)
	if err != nil {
		return nil, err
	}
	units, err := backup.RestoreLocks(ctx, eng, p, scope)
	if err != nil {
		return nil, err
	}
	set, err := unitlock.AcquireAll(ctx, g.lockDir(), units, unitlock.Options{Wait: !noWait, Operation: unitlock.Restore, OnWait: g.waitNotice(println)})
	if err != nil {
		return nil, err
	}
	ro.Ref = p.ID
	return set, nil
}
