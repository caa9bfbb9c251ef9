package daemon

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// WriteMetrics writes Prometheus' text format. It reads the daemon's own
// state only, so a scrape never waits for the repository or the engine.
func (d *Daemon) WriteMetrics(w io.Writer) {
	queued, running := d.q.Counts()
	d.mu.Lock()
	defer d.mu.Unlock()
	names := make([]string, 0, len(d.units))
	for n := range d.units {
		names = append(names, n)
	}
	sort.Strings(names)
	type series struct {
		name, help, typ string
		value           func(u *unitState) (float64, bool)
	}
	for _, s := range []series{
		{"lifeboat_unit_protected", "1 when the unit's policy protects it", "gauge", func(u *unitState) (float64, bool) { return b2f(u.info.Policy.Enabled), true }},
		{"lifeboat_unit_last_success_timestamp_seconds", "time of the unit's newest restore point", "gauge", func(u *unitState) (float64, bool) {
			return float64(u.lastSuccess.UnixNano()) / 1e9, !u.lastSuccess.IsZero()
		}},
		{"lifeboat_unit_last_backup_duration_seconds", "duration of the unit's last backup", "gauge", func(u *unitState) (float64, bool) { return u.lastDur.Seconds(), u.lastDur > 0 }},
		{"lifeboat_unit_last_backup_bytes_added", "bytes the unit's last backup added to the repository", "gauge", func(u *unitState) (float64, bool) { return float64(u.lastBytes), !u.lastSuccess.IsZero() }},
		{"lifeboat_unit_last_downtime_seconds", "how long the unit's last backup froze or stopped it", "gauge", func(u *unitState) (float64, bool) {
			return float64(u.lastDown) / 1000, !u.lastSuccess.IsZero()
		}},
		{"lifeboat_unit_backup_failures_total", "failed backups of the unit since the daemon started", "counter", func(u *unitState) (float64, bool) { return float64(u.failures), true }},
		{"lifeboat_unit_points", "restore points the unit has", "gauge", func(u *unitState) (float64, bool) { return float64(u.points), true }},
		{"lifeboat_unit_next_run_timestamp_seconds", "when the unit's next scheduled backup is due", "gauge", func(u *unitState) (float64, bool) {
			return float64(u.next.Unix()), !u.next.IsZero()
		}},
	} {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", s.name, s.help, s.name, s.typ)
		for _, n := range names {
			if v, ok := s.value(d.units[n]); ok {
				fmt.Fprintf(w, "%s{unit=\"%s\"} %g\n", s.name, escape(n), v)
			}
		}
	}
	gauge := func(name, help string, v float64) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s gauge\n%s %g\n", name, help, name, name, v)
	}
	gauge("lifeboat_jobs_queued", "jobs waiting", float64(queued))
	gauge("lifeboat_jobs_running", "jobs running", float64(running))
	if d.repo.size >= 0 && !d.repo.updated.IsZero() {
		gauge("lifeboat_repository_size_bytes", "bytes the repository's files take (measured at most once a minute)", float64(d.repo.size))
	}
	gauge("lifeboat_repository_points", "restore points in the repository", float64(d.repo.points))
	for _, kind := range []string{"check", "replicate", "maintenance"} {
		k := d.upkeep[kind]
		if k == nil {
			continue
		}
		if !k.lastSuccess.IsZero() {
			gauge("lifeboat_"+kind+"_last_success_timestamp_seconds", "time of the last successful "+kind, float64(k.lastSuccess.UnixNano())/1e9)
		}
		if !k.lastRun.IsZero() {
			gauge("lifeboat_"+kind+"_last_ok", "1 when the last "+kind+" succeeded", b2f(k.ok))
		}
		if kind == "replicate" && !k.lastSuccess.IsZero() {
			gauge("lifeboat_replicate_last_bytes_sent", "bytes the last replication sent", float64(k.lastBytes))
		}
	}
	gauge("lifeboat_daemon_start_timestamp_seconds", "when this daemon started", float64(d.started.Unix()))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// escape quotes a label value as the text format wants.
func escape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s)
}
