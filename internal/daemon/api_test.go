package daemon

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/api"
	"github.com/lifeboat-backup/lifeboat/internal/config"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
)

// TestSubmitValidatesFirst: an invalid restore is refused as a bad request
// before the daemon looks at the repository or queues anything (this
// daemon has no repository: touching it would panic).
func TestSubmitValidatesFirst(t *testing.T) {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Restore.TargetRoots = []string{t.TempDir()}
	d, err := New(Options{Config: cfg, StateDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for name, rr := range map[string]ops.RestoreRequest{
		"no point":             {},
		"relative target":      {Point: "p", Target: "restored", DryRun: true},
		"outside the roots":    {Point: "p", Target: "/etc"},
		"path without target":  {Point: "p", Path: "volumes/v"},
		"volume and container": {Point: "p", Volume: "v", Container: "c", DryRun: true},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := d.Submit(t.Context(), api.JobRequest{Kind: "restore", Restore: &rr})
			if !errors.Is(err, ops.ErrInvalid) {
				t.Fatalf("submit: %v", err)
			}
			if _, err := d.PlanRestore(t.Context(), rr); !errors.Is(err, ops.ErrInvalid) {
				t.Fatalf("plan: %v", err)
			}
			if n := len(d.Jobs()); n != 0 {
				t.Fatalf("%d jobs queued", n)
			}
		})
	}
}
