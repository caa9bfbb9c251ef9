// Package drill proves that a restore point comes back and works: it
// restores the point into a sandbox on the engine (restore.NewSandbox),
// starts it in dependency order, waits for every service, checks each
// database's files and dumps with the database's own tools, runs the
// unit's probes, measures the recovery time, removes the sandbox and
// records the result in the repository beside the point.
//
// The original unit is never touched: the sandbox is restored from the
// repository, not copied from the live unit, so nothing is paused or
// stopped, and a drill holds only a lock of its own (LockName), which no
// backup of the unit waits for.
package drill

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// ErrFailed means the drill ran and a check failed: the point did not
// prove itself.
var ErrFailed = errors.New("restore drill failed")

// Defaults of Options.
const (
	DefaultSettle       = 5 * time.Second
	DefaultStartTimeout = 2 * time.Minute
	DefaultProbeTimeout = time.Minute
	DefaultCheckTimeout = 10 * time.Minute
)

// Options of a drill.
type Options struct {
	Ref string // ID, prefix, UNIT@latest, UNIT@TIME
	// Settle is how long a container without a healthcheck must keep
	// running to count as up.
	Settle time.Duration
	// StartTimeout bounds the wait for each healthcheck and server.
	StartTimeout time.Duration
	// ProbeTimeout bounds how long a failing probe is retried.
	ProbeTimeout time.Duration
	// CheckTimeout bounds each database check and dump load.
	CheckTimeout time.Duration
	// LockDir holds the unit locks; JournalDir the restore journal that
	// makes the sandbox go away even after a kill.
	LockDir, JournalDir string
	// NoWait refuses (unitlock.ErrBusy) when another drill of the unit
	// runs, instead of waiting for it.
	NoWait bool
	// OnWait is told when the drill waits for another one.
	OnWait func(unitlock.Holder)
	// Shared makes the drill's lock hold across hosts (see unitlock).
	Shared   *unitlock.Shared
	Log      *slog.Logger
	Progress *progress.Counters
}

func (o *Options) defaults() {
	if o.Settle <= 0 {
		o.Settle = DefaultSettle
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.ProbeTimeout <= 0 {
		o.ProbeTimeout = DefaultProbeTimeout
	}
	if o.CheckTimeout <= 0 {
		o.CheckTimeout = DefaultCheckTimeout
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Result is what a drill found. It is what `drill --json` prints and
// what the repository keeps beside the point.
type Result struct {
	Point   string    `json:"point"`
	Unit    string    `json:"unit"`
	Sandbox string    `json:"sandbox"` // the prefix of every name it created
	Started time.Time `json:"started"`
	// RTOMS is the recovery time: from the start of the restore until
	// every service was up and every probe passed; 0 when they never
	// all were.
	RTOMS      int64    `json:"rto_ms"`
	DurationMS int64    `json:"duration_ms"`
	Passed     bool     `json:"passed"`
	Checks     []Check  `json:"checks"`
	NotKept    []string `json:"not_kept,omitempty"`
	// Cleanup says what could not be removed yet (the next lifeboat
	// command retries); "" when the sandbox is gone.
	Cleanup string `json:"cleanup_error,omitempty"`
}

// Check is one thing a drill proved, or failed to.
type Check struct {
	Name       string `json:"name"`
	Container  string `json:"container,omitempty"` // as the point names it
	Passed     bool   `json:"passed"`
	Output     string `json:"output,omitempty"` // the end of it
	DurationMS int64  `json:"duration_ms"`
}

// Failed lists the checks that failed.
func (r Result) Failed() []Check {
	var out []Check
	for _, c := range r.Checks {
		if !c.Passed {
			out = append(out, c)
		}
	}
	return out
}

// LockName is the lock a drill of unit holds: not the unit's own, so a
// drill never holds up the unit's backups, yet two drills of one unit
// never run at once.
func LockName(unit string) string { return "drill/" + unit }

// Run drills one restore point. It returns an error wrapping ErrFailed
// when the drill ran and a check failed, and another error when it could
// not run (the result is then incomplete and not recorded).
func Run(ctx context.Context, repo *repository.Repository, eng *engine.Client, opts Options) (Result, error) {
	opts.defaults()
	point, err := repo.Resolve(ctx, opts.Ref)
	if err != nil {
		return Result{}, err
	}
	lock, err := unitlock.Acquire(ctx, opts.LockDir, LockName(point.Unit), unitlock.Options{Wait: !opts.NoWait, Operation: unitlock.Drill, OnWait: opts.OnWait, Shared: opts.Shared})
	if err != nil {
		return Result{}, err
	}
	defer lock.Release()
	d := &drill{repo: repo, eng: eng, opts: opts}
	d.res = Result{Point: point.ID, Unit: point.Unit, Sandbox: "lbdrill-" + randomHex(3), Started: time.Now().UTC()}
	if err := d.run(ctx); err != nil {
		return d.res, err
	}
	d.res.DurationMS = time.Since(d.res.Started).Milliseconds()
	d.res.Passed = len(d.res.Failed()) == 0 && len(d.res.Checks) > 0
	if err := repo.RecordDrill(ctx, d.record()); err != nil {
		return d.res, fmt.Errorf("record the drill of %s: %w", point.ID, err)
	}
	if !d.res.Passed {
		var names []string
		for _, c := range d.res.Failed() {
			names = append(names, c.label())
		}
		return d.res, fmt.Errorf("%w: %s of point %s: %s", ErrFailed, point.Unit, shortID(point.ID), strings.Join(names, ", "))
	}
	return d.res, nil
}

// drill is one run.
type drill struct {
	repo *repository.Repository
	eng  *engine.Client
	opts Options
	res  Result
	sb   *restore.Sandbox
	up   map[string]bool // sandbox containers that came up, by point name
}

// run restores, starts and checks, and removes the sandbox whatever
// happens. An error is one that leaves the drill without a verdict.
func (d *drill) run(ctx context.Context) (err error) {
	t0 := time.Now()
	d.sb, err = restore.NewSandbox(ctx, d.repo, d.eng, restore.SandboxOptions{
		Ref: d.res.Point, Prefix: d.res.Sandbox + "-", JournalDir: d.opts.JournalDir, Log: d.opts.Log, Progress: d.opts.Progress,
	})
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, restore.ErrNoSandbox) {
			return err
		}
		d.add(Check{Name: "restore", Output: err.Error()}, t0)
		return nil
	}
	d.res.NotKept = d.sb.NotKept
	defer func() {
		did, rerr := d.sb.Remove(ctx)
		d.opts.Log.Info("drill sandbox removed", "sandbox", d.res.Sandbox, "did", len(did), "error", rerr)
		if rerr != nil {
			d.res.Cleanup = rerr.Error()
		}
	}()
	d.add(Check{Name: "restore", Passed: true, Output: fmt.Sprintf("containers: %d, volumes and bind sources: %d", len(d.sb.Containers), len(d.sb.Manifest.Volumes)+len(d.sb.Manifest.Binds))}, t0)
	d.startAll(ctx)
	failpoint.Hit("drill-started")
	d.probes(ctx)
	if len(d.res.Failed()) == 0 {
		d.res.RTOMS = time.Since(t0).Milliseconds()
	}
	d.databases(ctx)
	d.dumps(ctx)
	return context.Cause(ctx)
}

// add records a check that began at t0.
func (d *drill) add(c Check, t0 time.Time) {
	c.DurationMS = time.Since(t0).Milliseconds()
	c.Output = tail(c.Output)
	if c.Passed && c.Output == "" {
		c.Output = "no problem reported"
	}
	d.res.Checks = append(d.res.Checks, c)
	d.opts.Log.Info("drill check", "check", c.Name, "container", c.Container, "passed", c.Passed, "duration_ms", c.DurationMS)
}

func (c Check) label() string {
	if c.Container == "" {
		return c.Name
	}
	return c.Name + " (" + c.Container + ")"
}

// record is what the repository keeps of the result.
func (d *drill) record() repository.DrillRecord {
	return repository.DrillRecord{Point: d.res.Point, Unit: d.res.Unit, Time: d.res.Started, Passed: d.res.Passed, RTOMS: d.res.RTOMS, Detail: d.res}
}

// tail keeps the first line of a check's output (what failed) and its
// end (where tools say why).
func tail(s string) string {
	s = strings.TrimSpace(s)
	const max = 2000
	if len(s) <= max {
		return s
	}
	first, _, _ := strings.Cut(s, "\n")
	first = first[:min(len(first), 200)]
	return first + "\n…" + s[len(s)-(max-len(first)):]
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func shortID(id string) string { return id[:min(12, len(id))] }
