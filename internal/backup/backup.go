// Package backup runs backup jobs: resolve units, plan, capture each one
// into a restore point, and report. Units are handled a few at a time
// (Options.Parallel); a failure of one does not stop the others, and only real successes are
// reported as such.
package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/priority"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
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
	Images      string // none, ref, save, commit, push, combined; "" follows the label or the default (ref)
	Registry    string // HOST:PORT that timeline images are pushed to
	Trigger     string
	// Defaults are what labels override; the zero value means
	// policy.DefaultDefaults (the daemon passes its config's).
	Defaults   policy.Defaults
	Version    string // of lifeboat, for the manifest
	JournalDir string // where freezes are journalled until thawed
	// HelperDir journals the helper containers of a remote engine, and
	// StageDir holds its data while a backup reads it (remote.go).
	HelperDir, StageDir string
	// LockDir holds the units' locks: each unit's backup holds its lock,
	// so that no other backup, restore or drill of it interleaves.
	LockDir string
	// MemoDir keeps, per unit and data directory, the inodes the last
	// scan found without extended attributes (fsmeta.LoadXattrMemo); ""
	// keeps none.
	MemoDir string
	// NoWait refuses a unit whose lock another job holds (an error
	// wrapping unitlock.ErrBusy) instead of waiting for it.
	NoWait bool
	// OnWait is called when a unit's backup starts waiting for its lock,
	// with who holds it.
	OnWait func(unitlock.Holder)
	// Job names the daemon job, for the messages of jobs that wait.
	Job string
	// Host names the host the points are recorded under ("" the
	// repository's hostname); EngineName the engine in serve's config.
	Host, EngineName string
	// Shared, when set, makes each unit's lock hold across the hosts
	// that share the repository too (a lease in it).
	Shared *unitlock.Shared
	Log    *slog.Logger
	// OnStart is called before each unit with fresh counters, so a printer
	// can show its progress.
	OnStart func(unit string, c *progress.Counters)
	// OnDone is called after each unit, successful or not, and never
	// for two units at once.
	OnDone func(Result)
	// Parallel is how many units are backed up at once; 0 means
	// DefaultParallel, 1 one after another.
	Parallel int
	// Priority: "" or low lowers the process's priority while the job
	// runs, except while a unit is frozen; normal leaves it.
	Priority string
}

// Result is one unit's outcome. The embedded Point is what `backup --json`
// and `snapshots --json` share.
type Result struct {
	repository.Point
	Unchanged int64    `json:"bytes_unchanged"` // bytes of files found unchanged by metadata and not read again
	NotKept   []string `json:"not_kept,omitempty"`
	Skipped   string   `json:"skipped,omitempty"` // why --all left this unit out
	Err       error    `json:"-"`
}

// ErrPartial means some units were backed up and some failed.
var ErrPartial = errors.New("some units failed")

// Run backs up the units asked for and returns a result per unit. The error
// joins every unit's failure.
//
// repo gives the repository, opening it on first call or waiting for an
// open under way: a unit's lock is taken first, so that its lease settles
// while the repository opens.
func Run(ctx context.Context, repo func() (*repository.Repository, error), eng *engine.Client, opts Options) ([]Result, error) {
	if err := checkMode(opts.Consistency); err != nil {
		return nil, err
	}
	if err := checkImages(opts.Images); err != nil {
		return nil, err
	}
	if opts.Priority == "" {
		opts.Priority = opts.Defaults.Priority
	}
	if err := priority.Check(opts.Priority); err != nil {
		return nil, err
	}
	if opts.Priority != priority.Normal {
		defer priority.Background()()
	}
	if opts.Defaults == (policy.Defaults{}) {
		opts.Defaults = policy.DefaultDefaults
	}
	units, err := resolveUnits(ctx, eng, opts)
	if err != nil {
		return nil, err
	}
	if len(units) == 0 {
		opts.Log.Warn("no units on this host: no containers and no volumes, nothing to back up", "engine", eng.Host())
	}
	results, errs := runUnits(ctx, units, opts, func(ctx context.Context, u Unit) Result {
		return lockedBackup(ctx, repo, eng, u, opts)
	})
	err = errors.Join(errs...)
	if err != nil && len(errs) < len(units) {
		err = fmt.Errorf("%w: %w", ErrPartial, err)
	}
	return results, err
}

// maxOutraced bounds how often a backup starts again after another
// host's claim of the unit's lease won over its own.
const maxOutraced = 5

// lockedBackup backs up u while holding its lock, and starts again when
// another host's claim of the unit's lease outlived its own.
func lockedBackup(ctx context.Context, repo func() (*repository.Repository, error), eng *engine.Client, u Unit, opts Options) Result {
	for n := 1; ; n++ {
		res := lockedBackupOnce(ctx, repo, eng, u, opts)
		if !errors.Is(res.Err, unitlock.ErrOutraced) || n == maxOutraced {
			return res
		}
		opts.Log.Info("another host claimed the unit at the same moment: starting again behind it", "unit", u.String())
	}
}

// lockedBackupOnce backs up u under its lock. The lock is taken before
// the unit is planned: a plan made while another job has the unit frozen
// would see its containers paused and freeze nothing. The shared lease
// settles beside the repository's open, the plan and, when the capture
// changes nothing outside the repository, the whole first pass: the
// capture confirms it before its first change (capture.confirm).
func lockedBackupOnce(ctx context.Context, repo func() (*repository.Repository, error), eng *engine.Client, u Unit, opts Options) Result {
	start := time.Now()
	var waitFrom time.Time // when it began to wait for another job's hold
	onWait := func(h unitlock.Holder) {
		if waitFrom.IsZero() {
			waitFrom = time.Now()
		}
		if opts.OnWait != nil {
			opts.OnWait(h)
		}
	}
	l, err := unitlock.Acquire(ctx, opts.LockDir, u.String(), unitlock.Options{
		Wait: !opts.NoWait, Operation: unitlock.Backup, Job: opts.Job, OnWait: onWait, Shared: opts.Shared, Tentative: true})
	if err != nil {
		return Result{Err: err}
	}
	var waited time.Duration
	if !waitFrom.IsZero() {
		waited = time.Since(waitFrom)
	}
	opts.Log.Debug("unit locked", "unit", u.String(), "ms", time.Since(start).Milliseconds(), "waited_ms", waited.Milliseconds())
	defer func() {
		if err := l.Release(); err != nil {
			opts.Log.Warn("unit lock not released cleanly", "unit", u.String(), "err", err)
		}
	}()
	// Another host took the unit over (our lease could not be renewed in
	// time): stop, thawing what was frozen, rather than overlap with it.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-l.LostC():
			cancel(fmt.Errorf("lock of %s lost: %w", u, l.Lost()))
		case <-ctx.Done():
		}
	}()
	res := backupUnit(ctx, repo, eng, u, opts, lockTimes{start: start, waited: waited, confirm: l.Confirm})
	if lost := l.Lost(); res.Err != nil && errors.Is(lost, unitlock.ErrOutraced) {
		// Lost before it was confirmed: whatever the cancelled step
		// said, the unit is another host's and this one starts again.
		res.Err = fmt.Errorf("lease of %s: %w", u, lost)
	}
	return res
}

// lockTimes is what backupUnit needs of the unit's lock: when the job
// started, how long it waited for another's hold, and the lock's Confirm.
type lockTimes struct {
	start   time.Time
	waited  time.Duration
	confirm func(context.Context) error
}

func checkImages(v string) error {
	if v == "" {
		return nil
	}
	if err := policy.CheckImages(v); err != nil {
		return fmt.Errorf("--images: %w", err)
	}
	return nil
}

func checkMode(mode string) error {
	if mode == "" {
		return nil
	}
	if err := policy.CheckMode(mode); err != nil {
		return fmt.Errorf("--consistency: %w", err)
	}
	return nil
}

// Unit is what one restore point holds.
type Unit struct {
	Kind string // project, container or volume
	Name string
}

func (u Unit) String() string { return u.Kind + "/" + u.Name }

func resolveUnits(ctx context.Context, eng *engine.Client, opts Options) ([]Unit, error) {
	if opts.All {
		if len(opts.Units) > 0 {
			return nil, errors.New("give units or --all, not both")
		}
		return AllUnits(ctx, eng)
	}
	if len(opts.Units) == 0 {
		return nil, errors.New("nothing to back up: name units (project/NAME, container/NAME, volume/NAME) or use --all")
	}
	seen := map[Unit]bool{}
	var units []Unit
	for _, arg := range opts.Units {
		u, err := ParseUnit(arg)
		if err != nil {
			return nil, err
		}
		if u.Kind == "" {
			if u, err = resolveBare(ctx, eng, u.Name); err != nil {
				return nil, err
			}
		}
		if err := refuseSelf(ctx, eng, u); err != nil {
			return nil, err
		}
		if !seen[u] {
			seen[u] = true
			units = append(units, u)
		}
	}
	return units, nil
}

// AllUnits is every unit of the host: Compose projects, containers in no
// project, and volumes no container uses.
func AllUnits(ctx context.Context, eng *engine.Client) ([]Unit, error) {
	cs, vols, err := inventory(ctx, eng)
	if err != nil {
		return nil, err
	}
	return withoutSelf(ctx, eng, allUnits(cs, vols))
}

func inventory(ctx context.Context, eng *engine.Client) ([]engine.Container, []engine.Volume, error) {
	cs, err := eng.Containers(ctx)
	if err != nil {
		return nil, nil, err
	}
	vols, err := eng.Volumes(ctx)
	return cs, vols, err
}

func allUnits(cs []engine.Container, vols []engine.Volume) []Unit {
	var units []Unit
	seen := map[Unit]bool{}
	used := map[string]bool{}
	for _, c := range cs {
		u := Unit{Kind: "container", Name: c.Name}
		if c.Project != "" {
			u = Unit{Kind: "project", Name: c.Project}
		}
		if !seen[u] {
			seen[u] = true
			units = append(units, u)
		}
		for _, m := range c.Mounts {
			if m.Type == "volume" {
				used[m.Name] = true
			}
		}
	}
	for _, v := range vols {
		if !used[v.Name] {
			units = append(units, Unit{Kind: "volume", Name: v.Name})
		}
	}
	kindRank := map[string]int{"project": 0, "container": 1, "volume": 2}
	sort.Slice(units, func(i, j int) bool {
		if units[i].Kind != units[j].Kind {
			return kindRank[units[i].Kind] < kindRank[units[j].Kind]
		}
		return units[i].Name < units[j].Name
	})
	return units
}

// resolveBare finds what a bare NAME means: a project, a container or a
// volume, in that order; more than one is ambiguous.
func resolveBare(ctx context.Context, eng *engine.Client, name string) (Unit, error) {
	cs, err := eng.Containers(ctx)
	if err != nil {
		return Unit{}, err
	}
	var found []Unit
	for _, kind := range []string{"project", "container"} {
		for _, c := range cs {
			if (kind == "project" && c.Project == name) || (kind == "container" && c.Name == name) {
				found = append(found, Unit{Kind: kind, Name: name})
				break
			}
		}
	}
	if _, err := eng.Volume(ctx, name); err == nil {
		found = append(found, Unit{Kind: "volume", Name: name})
	} else if !errors.Is(err, engine.ErrNotFound) {
		return Unit{}, err
	}
	switch len(found) {
	case 0:
		return Unit{}, fmt.Errorf("%q is no project, container or volume on this host: see `lifeboat ls`", name)
	case 1:
		return found[0], nil
	}
	names := make([]string, len(found))
	for i, u := range found {
		names[i] = u.String()
	}
	return Unit{}, fmt.Errorf("%q is ambiguous: it names %s; write one of them", name, strings.Join(names, " and "))
}

// ParseUnit reads volume/NAME, container/NAME, project/NAME, or a bare NAME
// (Kind empty: resolved against the engine).
func ParseUnit(s string) (Unit, error) {
	kind, name, ok := strings.Cut(s, "/")
	if !ok {
		kind, name = "", s
	}
	if name == "" {
		return Unit{}, fmt.Errorf("unit %q has no name: write project/NAME, container/NAME or volume/NAME", s)
	}
	switch {
	case !ok, kind == "volume", kind == "container", kind == "project":
		return Unit{Kind: kind, Name: name}, nil
	}
	return Unit{}, fmt.Errorf("unit %q: unknown kind %q: write project/NAME, container/NAME or volume/NAME", s, kind)
}
