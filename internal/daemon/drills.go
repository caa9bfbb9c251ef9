package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/drill"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// drillState is what the daemon knows of a unit's drills.
type drillState struct {
	spec     string // the drill schedule in force: the label's, or drills.schedule
	sched    scheduler.Schedule
	next     time.Time
	last     *repository.DrillSummary // the newest drill of any of the unit's points
	point    string                   // the point it drilled
	failures int64                    // failed drills since the daemon started
}

// scheduleDrills follows a unit's drill schedule: its lifeboat.drill
// label, else the config file's drills.schedule; never for a unit the
// policy does not protect.
func (d *Daemon) scheduleDrills(u *unitState, now time.Time) {
	spec := u.info.Policy.Drill
	if !u.info.Policy.Enabled || u.info.Error != "" || spec == "never" {
		spec = ""
	}
	if spec == u.drill.spec {
		return
	}
	u.drill.spec, u.drill.sched, u.drill.next = spec, nil, time.Time{}
	if spec == "" {
		return
	}
	s, err := scheduler.Parse(spec)
	if err != nil {
		d.log.Warn("drill schedule", "unit", u.info.Unit, "err", err)
		return
	}
	u.drill.sched, u.drill.next = s, s.Next(now)
}

// dueDrills are the units whose drill is due, their next one scheduled.
func (d *Daemon) dueDrills(now time.Time) []string {
	var due []string
	for name, u := range d.units {
		if !u.drill.next.IsZero() && !u.drill.next.After(now) {
			u.drill.next = u.drill.sched.Next(now)
			if u.lastSuccess.IsZero() {
				continue // nothing to drill yet
			}
			due = append(due, name)
		}
	}
	return due
}

// submitDrill queues a drill of req's point. Drills queue apart from the
// unit's own jobs (a drill restores a copy from the repository and never
// delays a backup), one of a unit at a time, and at most
// drills.concurrency at once.
func (d *Daemon) submitDrill(ctx context.Context, req ops.DrillRequest, trigger, onto string) (scheduler.Job, error) {
	if err := req.Validate(); err != nil {
		return scheduler.Job{}, err
	}
	es, err := d.pickEngine(onto)
	if err != nil {
		return scheduler.Job{}, err
	}
	p, err := d.opts.Repo.Resolve(ctx, req.Point)
	if err != nil {
		return scheduler.Job{}, err
	}
	if es == nil {
		es = d.engineOfPoint(p)
	}
	req.Point = p.ID
	unit := d.qualify(es, p.Unit)
	return d.q.Submit("drill", unit, trigger, func(ctx context.Context, r *scheduler.Run) error {
		return d.runDrill(ctx, r, es, req, unit)
	})
}

// submitScheduledDrill drills the newest point of unit.
func (d *Daemon) submitScheduledDrill(ctx context.Context, unit string) {
	ref := unit + "@latest"
	if d.multi() {
		if es, local, err := d.target(unit); err == nil {
			ref = es.env.Host + ":" + local + "@latest"
		}
	}
	if _, err := d.submitDrill(ctx, ops.DrillRequest{Point: ref}, "schedule", ""); err != nil {
		d.log.Warn("drill not queued", "unit", unit, "err", err)
	}
}

func (d *Daemon) runDrill(ctx context.Context, r *scheduler.Run, es *engineState, req ops.DrillRequest, unit string) error {
	if err := d.drillSlot(ctx, r); err != nil {
		return err
	}
	defer func() { <-d.drillSlots }()
	release, err := es.slot(ctx, r)
	if err != nil {
		return err
	}
	defer release()
	res, err := ops.Drill(ctx, &es.env, req, observer(r, unit))
	if res.Point != "" {
		r.Report(res.Point, 0, 0, res)
		d.recordDrill(ctx, unit, res, err)
	}
	if err == nil {
		r.Log.Info("drill passed", "point", res.Point, "rto_ms", res.RTOMS)
	}
	return err
}

// drillSlot waits for one of the drills.concurrency slots, saying so on
// the job while it waits.
func (d *Daemon) drillSlot(ctx context.Context, r *scheduler.Run) error {
	select {
	case d.drillSlots <- struct{}{}:
		return nil
	default:
	}
	r.SetWaiting(fmt.Sprintf("a drill slot (drills.concurrency is %d)", cap(d.drillSlots)))
	defer r.SetWaiting("")
	select {
	case d.drillSlots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recordDrill keeps a drill's outcome in the unit's state, for the API and
// the metrics. A drill that could not run is no verdict on the point.
func (d *Daemon) recordDrill(ctx context.Context, unit string, res drill.Result, err error) {
	if err != nil && !errors.Is(err, drill.ErrFailed) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	u := d.units[unit]
	if u == nil {
		return
	}
	u.drill.last = &repository.DrillSummary{Time: res.Started.Add(time.Duration(res.DurationMS) * time.Millisecond), Passed: res.Passed, RTOMS: res.RTOMS}
	u.drill.point = res.Point
	if !res.Passed && ctx.Err() == nil {
		u.drill.failures++
	}
}

// newestDrills is each unit's newest drill among its points.
func newestDrills(points []repository.Point) map[string]repository.Point {
	out := map[string]repository.Point{}
	for _, p := range points {
		if p.LastDrill == nil {
			continue
		}
		if have, ok := out[p.Unit]; !ok || p.LastDrill.Time.After(have.LastDrill.Time) {
			out[p.Unit] = p
		}
	}
	return out
}
