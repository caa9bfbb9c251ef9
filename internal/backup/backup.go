// Package backup runs backup jobs: resolve units, plan, capture each one
// into a restore point, and report. Units are handled one after another;
// a failure of one does not stop the others, and only real successes are
// reported as such.
package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// Consistency modes.
const (
	ModeAuto     = "auto"
	ModeNone     = "none"
	ModePause    = "pause"
	ModeStop     = "stop"
	ModeSnapshot = "snapshot"
	ModeDump     = "dump"
)

// Options of one backup run.
type Options struct {
	Units       []string // as typed: volume/NAME, NAME, ...
	All         bool
	Consistency string
	Trigger     string
	Version     string // of lifeboat, for the manifest
	Log         *slog.Logger
	// OnStart is called before each unit with fresh counters, so a printer
	// can show its progress.
	OnStart func(unit string, c *progress.Counters)
	// OnDone is called after each unit, successful or not.
	OnDone func(Result)
}

// Result is one unit's outcome. The embedded Point is what `backup --json`
// and `snapshots --json` share.
type Result struct {
	repository.Point
	AddedBytes int64    `json:"bytes_added"`     // what the repository grew by (compressed, encrypted)
	Unchanged  int64    `json:"bytes_unchanged"` // bytes of files found unchanged by metadata and not read again
	NotKept    []string `json:"not_kept,omitempty"`
	Err        error    `json:"-"`
}

// ErrPartial means some units were backed up and some failed.
var ErrPartial = errors.New("some units failed")

// Run backs up the units asked for and returns a result per unit. The error
// joins every unit's failure.
func Run(ctx context.Context, repo *repository.Repository, eng *engine.Client, opts Options) ([]Result, error) {
	if err := checkMode(opts.Consistency); err != nil {
		return nil, err
	}
	units, err := resolveUnits(ctx, eng, opts)
	if err != nil {
		return nil, err
	}
	var results []Result
	var errs []error
	for _, u := range units {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		res := backupVolume(ctx, repo, eng, u, opts)
		if res.Err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", u.String(), res.Err))
		}
		if opts.OnDone != nil {
			opts.OnDone(res)
		}
		results = append(results, res)
	}
	err = errors.Join(errs...)
	if err != nil && len(errs) < len(units) {
		err = fmt.Errorf("%w: %w", ErrPartial, err)
	}
	return results, err
}

func checkMode(mode string) error {
	switch mode {
	case "", ModeAuto, ModeNone:
		return nil
	case ModePause, ModeStop, ModeSnapshot, ModeDump:
		return fmt.Errorf("--consistency %s applies to containers and projects; a volume unit is read with none (or auto)", mode)
	}
	return fmt.Errorf("unknown --consistency %q: use auto, none, pause, stop, snapshot or dump", mode)
}

// Unit is what one restore point holds.
type Unit struct {
	Kind string // "volume" for now; containers and projects come next
	Name string
}

func (u Unit) String() string { return u.Kind + "/" + u.Name }

func resolveUnits(ctx context.Context, eng *engine.Client, opts Options) ([]Unit, error) {
	if opts.All {
		if len(opts.Units) > 0 {
			return nil, errors.New("give units or --all, not both")
		}
		vols, err := eng.Volumes(ctx)
		if err != nil {
			return nil, err
		}
		units := make([]Unit, 0, len(vols))
		for _, v := range vols {
			units = append(units, Unit{Kind: "volume", Name: v.Name})
		}
		sort.Slice(units, func(i, j int) bool { return units[i].Name < units[j].Name })
		return units, nil
	}
	if len(opts.Units) == 0 {
		return nil, errors.New("nothing to back up: name units (volume/NAME) or use --all")
	}
	seen := map[Unit]bool{}
	var units []Unit
	for _, arg := range opts.Units {
		u, err := ParseUnit(arg)
		if err != nil {
			return nil, err
		}
		if !seen[u] {
			seen[u] = true
			units = append(units, u)
		}
	}
	return units, nil
}

// ParseUnit reads volume/NAME, container/NAME, project/NAME or a bare NAME.
func ParseUnit(s string) (Unit, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok {
		kind, name = "volume", s
	}
	if name == "" {
		return Unit{}, fmt.Errorf("unit %q has no name: write volume/NAME", s)
	}
	switch kind {
	case "volume":
		return Unit{Kind: kind, Name: name}, nil
	case "container", "project":
		return Unit{}, fmt.Errorf("unit %q: %s units are not supported by this version yet; back up their volumes (volume/NAME)", s, kind)
	}
	return Unit{}, fmt.Errorf("unit %q: unknown kind %q: write volume/NAME, container/NAME or project/NAME", s, kind)
}
