package daemon

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/config"
	"github.com/lifeboat-backup/lifeboat/internal/drill"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

func newTestDaemon(t *testing.T, edit func(*config.Config)) *Daemon {
	t.Helper()
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(cfg)
	}
	d, err := New(Options{Config: cfg, StateDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestDrillSchedules: a unit is drilled on its label's schedule, or the
// config's; never when unprotected, labelled never, or never backed up.
func TestDrillSchedules(t *testing.T) {
	d := newTestDaemon(t, nil)
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	backedUp := now.Add(-time.Hour)
	for _, tc := range []struct {
		name    string
		pol     policy.Policy
		success time.Time
		due     bool
	}{
		{"labelled", policy.Policy{Enabled: true, Drill: "@every 1m"}, backedUp, true},
		{"never backed up", policy.Policy{Enabled: true, Drill: "@every 1m"}, time.Time{}, false},
		{"unprotected", policy.Policy{Enabled: false, Drill: "@every 1m"}, backedUp, false},
		{"never", policy.Policy{Enabled: true, Drill: "never"}, backedUp, false},
		{"no schedule", policy.Policy{Enabled: true}, backedUp, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := &unitState{info: backup.UnitInfo{Unit: "project/" + tc.name, Policy: tc.pol}, lastSuccess: tc.success}
			d.units = map[string]*unitState{u.info.Unit: u}
			d.scheduleDrills(u, now)
			due := d.dueDrills(now.Add(2 * time.Minute))
			if got := len(due) == 1; got != tc.due {
				t.Fatalf("due %v, want %v (next %v)", due, tc.due, u.drill.next)
			}
			if tc.due && !u.drill.next.After(now.Add(2*time.Minute)) {
				t.Errorf("the next drill %v was not moved on", u.drill.next)
			}
		})
	}
	t.Run("config default and label change", func(t *testing.T) {
		d := newTestDaemon(t, func(c *config.Config) { c.Drills.Schedule = "@weekly" })
		if got := d.cfg.PolicyDefaults().Drill; got != "@weekly" {
			t.Fatalf("the config's drill schedule reaches policies as %q", got)
		}
		u := &unitState{info: backup.UnitInfo{Unit: "container/a", Policy: policy.Policy{Enabled: true, Drill: "@weekly"}}, lastSuccess: backedUp}
		d.scheduleDrills(u, now)
		first := u.drill.next
		u.info.Policy.Drill = "@every 1m"
		d.scheduleDrills(u, now)
		if u.drill.next.Equal(first) || u.drill.spec != "@every 1m" {
			t.Fatalf("a changed label kept the old schedule: %v %q", u.drill.next, u.drill.spec)
		}
	})
}

// TestDrillBudget: with drills.concurrency 1 a second drill waits for a
// slot, saying so on its job, and can be cancelled while it waits.
func TestDrillBudget(t *testing.T) {
	// Two job slots, one drill slot: the budget, not the queue, holds the
	// second drill back.
	d := newTestDaemon(t, func(c *config.Config) { c.Concurrency = 2 })
	release, held := make(chan struct{}), make(chan struct{})
	first, _ := d.q.Submit("drill", "container/a", "manual", func(ctx context.Context, r *scheduler.Run) error {
		if err := d.drillSlot(ctx, r); err != nil {
			return err
		}
		defer func() { <-d.drillSlots }()
		close(held)
		<-release
		return nil
	})
	// Both jobs may start at once: the second is submitted only once the
	// first holds the slot, or the second could take it and never wait.
	<-held
	second, _ := d.q.Submit("drill", "container/b", "manual", func(ctx context.Context, r *scheduler.Run) error {
		if err := d.drillSlot(ctx, r); err != nil {
			return err
		}
		<-d.drillSlots
		return nil
	})
	waitFor(t, func() bool { j, _ := d.q.Job(second.ID); return j.Waiting != "" })
	if j, _ := d.q.Job(first.ID); j.State != scheduler.Running {
		t.Fatalf("first drill %s", j.State)
	}
	close(release)
	waitFor(t, func() bool { j, _ := d.q.Job(second.ID); return j.State == scheduler.Succeeded })
}

// TestRecordDrill: a failed check counts as a failed drill; a drill that
// could not run is no verdict on the point.
func TestRecordDrill(t *testing.T) {
	d := newTestDaemon(t, nil)
	u := &unitState{info: backup.UnitInfo{Unit: "container/a"}}
	d.units["container/a"] = u
	ctx := t.Context()
	d.recordDrill(ctx, "container/a", drill.Result{Point: "p1", Passed: false}, errors.New("engine unreachable"))
	if u.drill.last != nil {
		t.Fatal("an error that is no verdict was recorded")
	}
	d.recordDrill(ctx, "container/a", drill.Result{Point: "p1", Passed: false}, drill.ErrFailed)
	if u.drill.last == nil || u.drill.last.Passed || u.drill.failures != 1 {
		t.Fatalf("failed drill recorded as %+v, failures %d", u.drill.last, u.drill.failures)
	}
	d.recordDrill(ctx, "container/a", drill.Result{Point: "p2", Passed: true, RTOMS: 1200}, nil)
	if !u.drill.last.Passed || u.drill.last.RTOMS != 1200 || u.drill.point != "p2" || u.drill.failures != 1 {
		t.Fatalf("passed drill recorded as %+v", u.drill)
	}
}

func waitFor(t *testing.T, ok func() bool) {
	t.Helper()
	for range 1000 {
		if ok() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatal("condition never held")
}
