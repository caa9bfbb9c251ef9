package daemon

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/config"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
)

// TestCollector checks the exposition of the daemon's state: the names
// and types the hand-written text had, label values escaped by the library.
func TestCollector(t *testing.T) {
	cfg, err := config.Load("")
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(Options{Config: cfg, StateDir: t.TempDir(), Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	success := time.Unix(1764000000, 0)
	d.units["project/app"] = &unitState{info: backup.UnitInfo{Unit: "project/app", Policy: policy.Policy{Enabled: true}},
		lastSuccess: success, lastDown: 1500, lastBytes: 4096, lastDur: 3 * time.Second, failures: 2, points: 7}
	d.units[`container/odd"name`] = &unitState{info: backup.UnitInfo{Unit: `container/odd"name`}}
	d.upkeep["check"] = &upkeepState{kind: "check", lastRun: success, lastSuccess: success, ok: true}
	d.upkeep["offsite-verify"] = &upkeepState{kind: "offsite-verify", lastRun: success.Add(time.Hour), lastSuccess: success, ok: false}
	d.repo = repoStats{size: 123456, points: 8, updated: time.Now()}

	want := `
# HELP lifeboat_unit_backup_failures_total failed backups of the unit since the daemon started
# TYPE lifeboat_unit_backup_failures_total counter
lifeboat_unit_backup_failures_total{unit="container/odd\"name"} 0
lifeboat_unit_backup_failures_total{unit="project/app"} 2
# HELP lifeboat_unit_last_downtime_seconds how long the unit's last backup froze or stopped it
# TYPE lifeboat_unit_last_downtime_seconds gauge
lifeboat_unit_last_downtime_seconds{unit="project/app"} 1.5
# HELP lifeboat_unit_last_success_timestamp_seconds time of the unit's newest restore point
# TYPE lifeboat_unit_last_success_timestamp_seconds gauge
lifeboat_unit_last_success_timestamp_seconds{unit="project/app"} 1.764e+09
# HELP lifeboat_unit_protected 1 when the unit's policy protects it
# TYPE lifeboat_unit_protected gauge
lifeboat_unit_protected{unit="container/odd\"name"} 0
lifeboat_unit_protected{unit="project/app"} 1
# HELP lifeboat_unit_points restore points the unit has
# TYPE lifeboat_unit_points gauge
lifeboat_unit_points{unit="container/odd\"name"} 0
lifeboat_unit_points{unit="project/app"} 7
# HELP lifeboat_check_last_ok 1 when the last check succeeded
# TYPE lifeboat_check_last_ok gauge
lifeboat_check_last_ok 1
# HELP lifeboat_offsite_verify_last_ok 1 when the last offsite-verify succeeded
# TYPE lifeboat_offsite_verify_last_ok gauge
lifeboat_offsite_verify_last_ok 0
# HELP lifeboat_repository_size_bytes bytes the repository's files take (measured at most once a minute)
# TYPE lifeboat_repository_size_bytes gauge
lifeboat_repository_size_bytes 123456
# HELP lifeboat_jobs_queued jobs waiting
# TYPE lifeboat_jobs_queued gauge
lifeboat_jobs_queued 0
`
	names := []string{"lifeboat_unit_backup_failures_total", "lifeboat_unit_last_downtime_seconds", "lifeboat_unit_last_success_timestamp_seconds",
		"lifeboat_unit_protected", "lifeboat_unit_points", "lifeboat_check_last_ok", "lifeboat_offsite_verify_last_ok", "lifeboat_repository_size_bytes", "lifeboat_jobs_queued"}
	if err := testutil.CollectAndCompare(d.Collector(), strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// A lint pass over all of it: names, help, types, units.
	if problems, err := testutil.CollectAndLint(d.Collector()); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %+v", err, problems)
	}
}
