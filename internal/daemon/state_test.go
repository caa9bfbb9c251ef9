package daemon

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// TestRecordBackup: a unit's state after each outcome of its backup, as
// the dashboard and the metrics read it.
func TestRecordBackup(t *testing.T) {
	d := newTestDaemon(t, nil)
	u := &unitState{info: backup.UnitInfo{Unit: "volume/v", Policy: policy.Policy{Enabled: true}}}
	d.units["volume/v"] = u
	ctx := t.Context()

	d.recordBackup(ctx, "volume/v", backup.Result{}, errors.New("engine gone"), time.Second)
	if u.lastResult != scheduler.Failed || u.failures != 1 || !u.lastSuccess.IsZero() {
		t.Fatalf("after a failure: %+v", u)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	d.recordBackup(cancelled, "volume/v", backup.Result{}, context.Canceled, time.Second)
	if u.lastResult != scheduler.Cancelled || u.failures != 1 {
		t.Fatalf("a cancelled backup counted as a failure: %+v", u)
	}
	now := time.Now()
	good := backup.Result{Point: repository.Point{ID: "p1", Time: now, Bytes: 100, DowntimeMS: 12}}
	d.recordBackup(ctx, "volume/v", good, nil, 2*time.Second)
	if u.lastResult != scheduler.Succeeded || u.lastPoint != "p1" || u.points != 1 || u.suspect || u.lastError != "" {
		t.Fatalf("after a success: %+v", u)
	}
	suspect := backup.Result{Point: repository.Point{ID: "p2", Time: now, Suspect: true, Anomalies: []string{"files shrank"}}}
	d.recordBackup(ctx, "volume/v", suspect, nil, time.Second)
	if !u.suspect || u.points != 2 {
		t.Fatalf("a suspect point is not marked: %+v", u)
	}
	d.recordBackup(ctx, "volume/v", backup.Result{Skipped: "no data"}, nil, time.Second)
	if u.points != 2 || u.lastPoint != "p2" {
		t.Fatalf("a skipped unit changed the last point: %+v", u)
	}
}

// TestOverdue: a unit is overdue once its last success is older than two
// of its scheduled intervals, never without a schedule or a success.
func TestOverdue(t *testing.T) {
	hourly, err := scheduler.Parse("@every 1h")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name string
		u    unitState
		want bool
	}{
		{"fresh", unitState{sched: hourly, lastSuccess: now.Add(-90 * time.Minute)}, false},
		{"two intervals", unitState{sched: hourly, lastSuccess: now.Add(-150 * time.Minute)}, true},
		{"no schedule", unitState{lastSuccess: now.Add(-48 * time.Hour)}, false},
		{"never backed up", unitState{sched: hourly}, false},
	} {
		if got := overdue(&tc.u, now); got != tc.want {
			t.Errorf("%s: overdue %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestProtection: the dashboard's word for a unit, the most urgent first;
// points without a schedule are not protection.
func TestProtection(t *testing.T) {
	hourly, _ := scheduler.Parse("@every 1h")
	on := backup.UnitInfo{Policy: policy.Policy{Enabled: true}}
	now := time.Now()
	for _, tc := range []struct {
		name    string
		u       unitState
		overdue bool
		want    string
	}{
		{"disabled", unitState{info: backup.UnitInfo{}}, false, "unprotected"},
		{"failing", unitState{info: on, sched: hourly, lastResult: scheduler.Failed, lastSuccess: now}, false, "failing"},
		{"old point, no schedule", unitState{info: on, lastSuccess: now}, false, "unscheduled"},
		{"nothing, no schedule", unitState{info: on}, false, "unscheduled"},
		{"scheduled, never run", unitState{info: on, sched: hourly}, false, "never"},
		{"overdue", unitState{info: on, sched: hourly, lastSuccess: now}, true, "overdue"},
		{"protected", unitState{info: on, sched: hourly, lastSuccess: now}, false, "protected"},
	} {
		if got := protection(&tc.u, tc.overdue); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
