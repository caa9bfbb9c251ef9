package daemon

import (
	"strings"

	"github.com/prometheus/client_golang/prometheus"
)

// Collector reports the daemon's state as Prometheus metrics. A scrape
// reads the daemon's own state only, so it never waits for the repository
// or the engine.
func (d *Daemon) Collector() prometheus.Collector { return collector{d} }

// unitMetric is one per-unit series: its value for a unit, and whether the
// unit has one (a never-backed-up unit has no last success time).
type unitMetric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(u *unitState) (float64, bool)
}

// withEngine is each unit series' twin with an engine label, for a
// daemon of many engines.
var withEngine = map[*prometheus.Desc]*prometheus.Desc{}

func unitDesc(name, help string) *prometheus.Desc {
	d := prometheus.NewDesc(name, help, []string{"unit"}, nil)
	withEngine[d] = prometheus.NewDesc(name, help, []string{"unit", "engine"}, nil)
	return d
}

var (
	unitMetrics = []unitMetric{
		{unitDesc("lifeboat_unit_protected", "1 when the unit's policy protects it"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) { return b2f(u.info.Policy.Enabled), true }},
		{unitDesc("lifeboat_unit_scheduled", "1 when a schedule backs the unit up; a protected unit at 0 is never backed up again"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) { return b2f(u.sched != nil), u.info.Policy.Enabled }},
		{unitDesc("lifeboat_unit_last_success_timestamp_seconds", "time of the unit's newest restore point"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) {
				return float64(u.lastSuccess.UnixNano()) / 1e9, !u.lastSuccess.IsZero()
			}},
		{unitDesc("lifeboat_unit_last_backup_duration_seconds", "duration of the unit's last backup"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) { return u.lastDur.Seconds(), u.lastDur > 0 }},
		{unitDesc("lifeboat_unit_last_backup_bytes_added", "bytes the unit's last backup added to the repository"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) { return float64(u.lastBytes), !u.lastSuccess.IsZero() }},
		{unitDesc("lifeboat_unit_last_downtime_seconds", "how long the unit's last backup froze or stopped it"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) { return float64(u.lastDown) / 1000, !u.lastSuccess.IsZero() }},
		{unitDesc("lifeboat_unit_backup_failures_total", "failed backups of the unit since the daemon started"), prometheus.CounterValue,
			func(u *unitState) (float64, bool) { return float64(u.failures), true }},
		{unitDesc("lifeboat_unit_points", "restore points the unit has"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) { return float64(u.points), true }},
		{unitDesc("lifeboat_unit_next_run_timestamp_seconds", "when the unit's next scheduled backup is due"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) { return float64(u.next.Unix()), !u.next.IsZero() }},
		{unitDesc("lifeboat_unit_suspect", "1 when the unit's newest point is one the anomaly guard marked and nobody acknowledged"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) { return b2f(u.suspect), !u.lastSuccess.IsZero() }},
		{unitDesc("lifeboat_drill_last_passed", "1 when the unit's newest drill proved its point restores and works"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) {
				return b2f(u.drill.last != nil && u.drill.last.Passed), u.drill.last != nil
			}},
		{unitDesc("lifeboat_drill_last_timestamp_seconds", "time of the unit's newest drill"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) {
				if u.drill.last == nil {
					return 0, false
				}
				return float64(u.drill.last.Time.UnixNano()) / 1e9, true
			}},
		{unitDesc("lifeboat_drill_rto_seconds", "recovery time of the unit's newest drill that reached it"), prometheus.GaugeValue,
			func(u *unitState) (float64, bool) {
				if u.drill.last == nil || u.drill.last.RTOMS == 0 {
					return 0, false
				}
				return float64(u.drill.last.RTOMS) / 1000, true
			}},
		{unitDesc("lifeboat_drill_failures_total", "failed drills of the unit since the daemon started"), prometheus.CounterValue,
			func(u *unitState) (float64, bool) { return float64(u.drill.failures), true }},
	}
	jobsQueued   = prometheus.NewDesc("lifeboat_jobs_queued", "jobs waiting", nil, nil)
	jobsRunning  = prometheus.NewDesc("lifeboat_jobs_running", "jobs running", nil, nil)
	repoSizeDesc = prometheus.NewDesc("lifeboat_repository_size_bytes", "bytes the repository's files take (measured at most once a minute)", nil, nil)
	repoPoints   = prometheus.NewDesc("lifeboat_repository_points", "restore points in the repository", nil, nil)
	startTime    = prometheus.NewDesc("lifeboat_daemon_start_timestamp_seconds", "when this daemon started", nil, nil)
	replBytes    = prometheus.NewDesc("lifeboat_replicate_last_bytes_sent", "bytes the last replication sent", nil, nil)
	upkeepKinds  = []string{"check", "replicate", "maintenance", "offsite-verify"}
	upkeepOK     = map[string]*prometheus.Desc{}
	upkeepLast   = map[string]*prometheus.Desc{}
)

func init() {
	// The upkeep series keep the names the hand-written exposition had
	// (lifeboat_check_last_ok, …): dashboards already use them.
	for _, k := range upkeepKinds {
		// offsite-verify: lifeboat_offsite_verify_last_ok.
		name := "lifeboat_" + strings.ReplaceAll(k, "-", "_")
		upkeepLast[k] = prometheus.NewDesc(name+"_last_success_timestamp_seconds", "time of the last successful "+k, nil, nil)
		upkeepOK[k] = prometheus.NewDesc(name+"_last_ok", "1 when the last "+k+" succeeded", nil, nil)
	}
}

type collector struct{ d *Daemon }

var (
	engineUp    = prometheus.NewDesc("lifeboat_engine_up", "1 when the engine answered the last discovery", []string{"engine"}, nil)
	engineUnits = prometheus.NewDesc("lifeboat_engine_units", "units the engine's last discovery found", []string{"engine"}, nil)
)

// Describe names the series; with many engines, unit series carry an
// engine label and each engine has its own health series.
func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range unitMetrics {
		if c.d.multi() {
			ch <- withEngine[m.desc]
		} else {
			ch <- m.desc
		}
	}
	if c.d.multi() {
		ch <- engineUp
		ch <- engineUnits
	}
	for _, desc := range []*prometheus.Desc{jobsQueued, jobsRunning, repoSizeDesc, repoPoints, startTime, replBytes} {
		ch <- desc
	}
	for _, k := range upkeepKinds {
		ch <- upkeepLast[k]
		ch <- upkeepOK[k]
	}
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	queued, running := d.q.Counts()
	gauge := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	gauge(jobsQueued, float64(queued))
	gauge(jobsRunning, float64(running))
	gauge(startTime, float64(d.started.Unix()))
	if d.multi() {
		for _, es := range d.engines {
			es.mu.Lock()
			up, n := es.client != nil && es.err == "", es.units
			es.mu.Unlock()
			gauge(engineUp, b2f(up), es.cfg.Name)
			gauge(engineUnits, float64(n), es.cfg.Name)
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	for name, u := range d.units {
		for _, m := range unitMetrics {
			v, ok := m.value(u)
			switch {
			case !ok:
			case d.multi():
				ch <- prometheus.MustNewConstMetric(withEngine[m.desc], m.typ, v, name, u.engine)
			default:
				ch <- prometheus.MustNewConstMetric(m.desc, m.typ, v, name)
			}
		}
	}
	if d.repo.size >= 0 && !d.repo.updated.IsZero() {
		gauge(repoSizeDesc, float64(d.repo.size))
	}
	gauge(repoPoints, float64(d.repo.points))
	for _, kind := range upkeepKinds {
		k := d.upkeep[kind]
		if k == nil {
			continue
		}
		if !k.lastSuccess.IsZero() {
			gauge(upkeepLast[kind], float64(k.lastSuccess.UnixNano())/1e9)
			if kind == "replicate" {
				gauge(replBytes, float64(k.lastBytes))
			}
		}
		if !k.lastRun.IsZero() {
			gauge(upkeepOK[kind], b2f(k.ok))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
