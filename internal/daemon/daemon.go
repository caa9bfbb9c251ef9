// Package daemon is lifeboat serve: it discovers units and their policy
// from labels and the config file, follows the engine's events, runs each
// unit's backups on its schedule (and a run missed while it was down, once
// at start), applies retention after each success, keeps the repository
// up (maintenance, check, offsite copy), and answers the API.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/config"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/notify"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// Options of a Daemon.
type Options struct {
	Config *config.Config
	Repo   *repository.Repository
	Engine *engine.Client
	// StateDir holds the job history, and the freeze journal, restore
	// journal and unit locks it shares with the CLI.
	StateDir string
	// Fresh gives the options of a new connection to the repository with
	// an empty cache, for checks; nil checks through Repo.
	Fresh   func() repository.Options
	Version string
	Log     *slog.Logger
	// ShutdownGrace is how long running jobs may finish on SIGTERM before
	// they are cancelled (and thaw what they froze); 10s when zero.
	ShutdownGrace time.Duration
	// ConfigPath is the config file, backed up (without its secrets)
	// with lifeboat's state; "" without one.
	ConfigPath string
}

// Daemon is one running lifeboat serve.
type Daemon struct {
	opts    Options
	env     ops.Env // what every job's operation runs against
	cfg     *config.Config
	log     *slog.Logger
	q       *scheduler.Queue
	hist    *scheduler.History
	note    *notify.Notifier
	started time.Time

	mu     sync.Mutex
	units  map[string]*unitState
	upkeep map[string]*upkeepState
	repo   repoStats
	wake   chan struct{}
	ready  chan struct{} // closed once the first discovery is done
	// drillSlots holds one token per running drill: the budget of
	// drills.concurrency.
	drillSlots chan struct{}
	refresh    sync.Mutex // one discovery at a time
	// engines are the config's engines (engines.go), or the one engine.
	engines []*engineState
}

// unitState is what the daemon knows of a unit between backups.
type unitState struct {
	info        backup.UnitInfo
	engine      string // its engine's name
	unreachable string // why its engine did not answer the last discovery
	spec        string // the schedule in force
	sched       scheduler.Schedule
	next        time.Time
	lastSuccess time.Time
	lastPoint   string
	lastDown    int64
	lastBytes   int64 // added to the repository by the last backup
	lastSize    int64 // of the unit's data in its newest point
	lastDur     time.Duration
	lastResult  string
	lastError   string
	failures    int64
	points      int
	drill       drillState
	// suspect: the unit's newest point is one the anomaly guard marked
	// and nobody acknowledged yet.
	suspect bool
}

// upkeepState is one repository-wide job's schedule and last outcome.
type upkeepState struct {
	kind        string
	sched       scheduler.Schedule
	next        time.Time
	lastRun     time.Time
	lastSuccess time.Time
	lastError   string
	lastBytes   int64
	ok          bool
}

type repoStats struct {
	size    int64
	points  int
	updated time.Time
}

// New prepares a daemon: its job history is read (jobs a killed daemon
// left running are closed as failed) and its queue made.
func New(opts Options) (*Daemon, error) {
	if opts.ShutdownGrace == 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	hist, err := scheduler.OpenHistory(filepath.Join(opts.StateDir, "jobs.jsonl"), 1000)
	if err != nil {
		return nil, err
	}
	d := &Daemon{opts: opts, cfg: opts.Config, log: opts.Log, hist: hist, started: time.Now(),
		units: map[string]*unitState{}, upkeep: map[string]*upkeepState{}, wake: make(chan struct{}, 1), ready: make(chan struct{}),
		drillSlots: make(chan struct{}, max(1, opts.Config.Drills.Concurrency))}
	d.env = ops.Env{
		Repository: func(context.Context, bool) (*repository.Repository, error) { return opts.Repo, nil },
		Engine:     func(context.Context) (*engine.Client, error) { return opts.Engine, nil },
		Fresh:      opts.Fresh, StateDir: opts.StateDir, Version: opts.Version, Log: opts.Log,
		// The API's clients are not the daemon's user: host directories
		// only under the configured roots.
		Confined: true, TargetRoots: opts.Config.Restore.TargetRoots, Defaults: opts.Config.PolicyDefaults(),
	}
	if d.note, err = newNotifier(opts.Config, d); err != nil {
		return nil, err
	}
	d.setupEngines()
	conc := opts.Config.Concurrency
	if d.multi() {
		// Each engine's own budget bounds its jobs; the queue lets them
		// all run.
		sum := 0
		for _, es := range d.engines {
			sum += cap(es.slots)
		}
		conc = max(conc, sum)
	}
	d.q = scheduler.NewQueue(conc, hist, opts.Log, d.onChange)
	return d, nil
}

// Queue is the daemon's job queue.
func (d *Daemon) Queue() *scheduler.Queue { return d.q }

// Run schedules until ctx ends, then stops the queue: running jobs get
// ShutdownGrace to finish, then are cancelled and thaw what they froze.
func (d *Daemon) Run(ctx context.Context) error {
	defer d.hist.Close()
	d.seedUpkeep()
	if err := d.discover(ctx, true); err != nil {
		d.log.Error("discovering units", "err", err)
	}
	close(d.ready)
	for _, es := range d.engines {
		go d.watch(ctx, es)
	}
	for {
		wait := time.Until(d.nextWake())
		timer := time.NewTimer(max(wait, 0))
		select {
		case <-ctx.Done():
			timer.Stop()
			d.log.Info("stopping: waiting for running jobs", "grace", d.opts.ShutdownGrace)
			sctx, cancel := context.WithTimeout(context.Background(), d.opts.ShutdownGrace)
			d.q.Shutdown(sctx)
			cancel()
			d.closeNotifier()
			return nil
		case <-d.wake:
			timer.Stop()
			// Compose creates a project's containers one by one: wait for
			// the burst to end before looking.
			select {
			case <-time.After(500 * time.Millisecond):
			case <-ctx.Done():
				continue
			}
			drain(d.wake)
			if err := d.discover(ctx, false); err != nil {
				d.log.Warn("discovering units", "err", err)
			}
		case <-timer.C:
			d.fireDue(ctx)
		}
	}
}

func drain(c chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// poke asks for a new discovery.
func (d *Daemon) poke() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// rediscover is how often units are looked at without an event.
const rediscover = time.Minute

func (d *Daemon) nextWake() time.Time {
	d.mu.Lock()
	defer d.mu.Unlock()
	next := time.Now().Add(rediscover)
	for _, u := range d.units {
		for _, t := range []time.Time{u.next, u.drill.next} {
			if !t.IsZero() && t.Before(next) {
				next = t
			}
		}
	}
	for _, k := range d.upkeep {
		if !k.next.IsZero() && k.next.Before(next) {
			next = k.next
		}
	}
	return next
}

// fireDue submits every job that is due, and rediscovers when nothing was.
func (d *Daemon) fireDue(ctx context.Context) {
	now := time.Now()
	var units []string
	var upkeep []string
	d.mu.Lock()
	for name, u := range d.units {
		if !u.next.IsZero() && !u.next.After(now) {
			units = append(units, name)
			u.next = u.sched.Next(now)
		}
	}
	for kind, k := range d.upkeep {
		if !k.next.IsZero() && !k.next.After(now) {
			upkeep = append(upkeep, kind)
			k.next = k.sched.Next(now)
		}
	}
	drills := d.dueDrills(now)
	d.mu.Unlock()
	sort.Strings(units)
	for _, u := range units {
		d.submitBackup(u, "schedule")
	}
	sort.Strings(drills)
	for _, u := range drills {
		d.submitScheduledDrill(ctx, u)
	}
	for _, k := range upkeep {
		if _, err := d.submitUpkeep(k, "schedule"); err != nil {
			d.log.Warn("upkeep job not queued", "kind", k, "err", err)
		}
	}
	if len(units)+len(upkeep)+len(drills) == 0 {
		if err := d.discover(ctx, false); err != nil {
			d.log.Warn("discovering units", "err", err)
		}
	}
}

// discover lists the units on the engine and their policy, starts
// scheduling new ones and drops those that are gone. At start, a unit
// whose last point is older than its schedule allows is backed up once.
func (d *Daemon) discover(ctx context.Context, atStart bool) error {
	d.refresh.Lock()
	defer d.refresh.Unlock()
	infos, engineOf, failed := d.listAll(ctx)
	if len(failed) == len(d.engines) && !d.multi() {
		return errors.New(failed[d.engines[0].cfg.Name])
	}
	var err error
	var last, drilled map[string]repository.Point
	var counts map[string]int
	if atStart {
		if last, drilled, counts, err = d.lastPoints(ctx); err != nil {
			return err
		}
	}
	now := time.Now()
	var missed []string
	d.mu.Lock()
	seen := map[string]bool{}
	for _, info := range infos {
		seen[info.Unit] = true
		u := d.units[info.Unit]
		if u == nil {
			u = &unitState{}
			d.units[info.Unit] = u
			if p, ok := last[info.Unit]; ok {
				u.lastSuccess, u.lastPoint, u.lastDown, u.lastDur, u.lastSize = p.Time, p.ID, p.DowntimeMS, time.Duration(p.DurationMS)*time.Millisecond, p.Bytes
				u.suspect = !p.Good()
			}
			u.points = counts[info.Unit]
			if p, ok := drilled[info.Unit]; ok {
				u.drill.last, u.drill.point = p.LastDrill, p.ID
			}
			if !atStart {
				d.log.Info("new unit", "unit", info.Unit)
			}
		}
		d.warnUnknownRoutes(info.Unit, u.info.Policy.Notify, info.Policy.Notify)
		u.info, u.engine, u.unreachable = info, engineOf[info.Unit], ""
		d.scheduleDrills(u, now)
		spec := ""
		if info.Policy.Enabled && info.Error == "" {
			spec = info.Policy.Schedule
		}
		if spec == u.spec {
			continue
		}
		u.spec, u.sched, u.next = spec, nil, time.Time{}
		if spec == "" {
			continue
		}
		s, err := scheduler.Parse(spec)
		if err != nil {
			u.info.Error = err.Error()
			continue
		}
		u.sched, u.next = s, s.Next(now)
		if atStart && scheduler.Missed(s, u.lastSuccess, now) {
			missed = append(missed, info.Unit)
		}
	}
	for name, u := range d.units {
		if why, ok := failed[u.engine]; ok {
			// Its engine did not answer: the unit is not gone, only
			// out of reach, and says so.
			u.unreachable = why
			continue
		}
		if !seen[name] {
			delete(d.units, name)
		}
	}
	d.mu.Unlock()
	sort.Strings(missed)
	for _, u := range missed {
		d.submitBackup(u, "missed")
	}
	return nil
}

// lastPoints is each unit's newest point, its newest drilled point and
// its point count.
func (d *Daemon) lastPoints(ctx context.Context) (last, drilled map[string]repository.Point, counts map[string]int, err error) {
	points, err := d.opts.Repo.List(ctx, "")
	if err != nil {
		return nil, nil, nil, err
	}
	last, counts = map[string]repository.Point{}, map[string]int{}
	for _, p := range points {
		key := d.pointKey(p)
		counts[key]++
		if p.Time.After(last[key].Time) {
			last[key] = p
		}
	}
	d.mu.Lock()
	d.repo.points = len(points)
	d.mu.Unlock()
	return last, d.newestDrillsByKey(points), counts, nil
}

// seedUpkeep schedules the repository-wide jobs, and runs once at start
// those the history says were missed.
func (d *Daemon) seedUpkeep() {
	now := time.Now()
	add := func(kind, spec string) {
		if spec == "" || spec == "never" {
			return
		}
		s, err := scheduler.Parse(spec)
		if err != nil {
			d.log.Error("upkeep schedule", "kind", kind, "err", err)
			return
		}
		k := &upkeepState{kind: kind, sched: s, next: s.Next(now)}
		for _, j := range d.hist.All() {
			if j.Kind != kind || j.Ended == nil {
				continue
			}
			if k.lastRun.IsZero() {
				k.lastRun, k.ok, k.lastError, k.lastBytes = *j.Ended, j.State == scheduler.Succeeded, j.Error, j.Bytes
			}
			if j.State == scheduler.Succeeded {
				k.lastSuccess = *j.Ended
				break
			}
		}
		d.upkeep[kind] = k
		if !k.lastSuccess.IsZero() && scheduler.Missed(s, k.lastSuccess, now) {
			k.next = now
		}
	}
	add("maintenance", d.cfg.Maintenance.Schedule)
	add(stateKind, stateSchedule)
	d.stateAtStart(now)
	add("check", d.cfg.Check.Schedule)
	if d.cfg.Offsite.To != "" {
		add("replicate", d.cfg.Offsite.Schedule)
		add("offsite-verify", d.cfg.Offsite.VerifySchedule)
	}
}

// retentionOf is the retention a unit's policy asks for.
func (d *Daemon) retentionOf(unit string) policy.Retention {
	d.mu.Lock()
	defer d.mu.Unlock()
	if u, ok := d.units[unit]; ok {
		return u.info.Policy.Retention
	}
	return policy.Retention{}
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%.1fs", d.Seconds()) }
