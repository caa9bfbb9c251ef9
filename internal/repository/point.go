package repository

import (
	"encoding/json"
	"strconv"
	"time"
)

// FormatVersion is the version of the restore point layout (lifeboat.json,
// volumes/, meta/, ...). Readers refuse versions they do not know.
const FormatVersion = 1

// Point is one restore point as listings show it. It is built from the
// snapshot manifest's labels and stats alone, so listing never reads trees.
// The CLI's --json output and the API use this type.
type Point struct {
	ID   string `json:"id"`
	Unit string `json:"unit"`
	Kind string `json:"kind"`
	Host string `json:"host"`
	// EngineID is the engine's own ID, Engine its name in serve's config
	// (points of older versions have neither).
	EngineID    string    `json:"engine_id,omitempty"`
	Engine      string    `json:"engine,omitempty"`
	Time        time.Time `json:"time"`
	Consistency string    `json:"consistency"`
	DowntimeMS  int64     `json:"downtime_ms"`
	Bytes       int64     `json:"bytes"`
	Files       int64     `json:"files"`
	Trigger     string    `json:"trigger"`
	// DurationMS is the whole backup job's, from its start (the unit's
	// lock, the repository's open and planning included) to its data
	// stored, less any wait for another job's hold on the unit; points
	// made before lifeboat kept that give their last pass's.
	DurationMS int64 `json:"duration_ms"`
	// PhasesMS are the durations of the job's phases (wait, which
	// DurationMS leaves out, open, plan, images, live_pass, freeze,
	// frozen_pass, snapshot_pass, thaw, dumps, store);
	// phases that ran beside others (dumps and image archives are read
	// during a pass) overlap, so they need not add up to DurationMS.
	// Points made before lifeboat kept them have none.
	PhasesMS map[string]int64 `json:"phases_ms,omitempty"`
	// AddedBytes is what the repository grew by for this point
	// (compressed, encrypted); 0 when unknown.
	AddedBytes int64 `json:"bytes_added,omitempty"`
	// Dumps are the sizes of the point's database dumps by
	// "container/file".
	Dumps map[string]int64 `json:"dumps,omitempty"`
	// Suspect says the anomaly guard found the point unlike its unit's
	// history, for the reasons in Anomalies; Acked, that someone accepted
	// it (`lifeboat ack`). Retention keeps the good points before an
	// unacknowledged suspect one.
	Suspect   bool     `json:"suspect"`
	Anomalies []string `json:"anomalies,omitempty"`
	Acked     bool     `json:"acked,omitempty"`
	// LastDrill is the newest restore drill of the point; nil if never
	// drilled.
	LastDrill *DrillSummary `json:"last_drill,omitempty"`
	// OffsiteLockedUntil is when the point's offsite copy can first be
	// removed: the lock the newest locked replicate run that copied it
	// set on all its blobs. nil when no locked run copied it yet.
	OffsiteLockedUntil *time.Time `json:"offsite_locked_until,omitempty"`
}

// Good says whether p counts as normal: not suspect, or acknowledged.
func (p Point) Good() bool { return !p.Suspect || p.Acked }

// Label keys, stored as kopia manifest tags (which need the "tag:" prefix).
const (
	labelUnit        = "tag:lifeboat.unit"
	labelKind        = "tag:lifeboat.kind"
	labelHost        = "tag:lifeboat.host"
	labelEngineID    = "tag:lifeboat.engine_id"
	labelEngine      = "tag:lifeboat.engine"
	labelTrigger     = "tag:lifeboat.trigger"
	labelConsistency = "tag:lifeboat.consistency"
	labelDowntime    = "tag:lifeboat.downtime_ms"
	labelFormat      = "tag:lifeboat.format"
	labelFiles       = "tag:lifeboat.files"
	labelBytes       = "tag:lifeboat.bytes"
	labelDuration    = "tag:lifeboat.duration_ms"
	labelAdded       = "tag:lifeboat.bytes_added"
	labelDumps       = "tag:lifeboat.dumps"     // JSON object: "container/file" → bytes
	labelPhases      = "tag:lifeboat.phases_ms" // JSON object: phase → milliseconds
	labelSuspect     = "tag:lifeboat.suspect"   // "true"
	labelAnomalies   = "tag:lifeboat.anomalies" // JSON array of reasons
)

// Labels are what a capture reports about itself once it is done.
type Labels struct {
	Consistency string
	DowntimeMS  int64
	// Files and Bytes count the unit's data, without lifeboat's own
	// manifest and sidecars, when Counted; otherwise listings show the
	// repository's count of the whole tree.
	Counted      bool
	Files, Bytes int64
	// Dumps are the sizes of the database dumps by "container/file".
	Dumps map[string]int64
	// PhasesMS are the capture's phase durations; Snapshot adds "store".
	PhasesMS map[string]int64
}

func pointLabels(unit, kind, host, trigger string, l Labels) map[string]string {
	m := map[string]string{
		labelUnit: unit, labelKind: kind, labelHost: host, labelTrigger: trigger,
		labelConsistency: l.Consistency, labelDowntime: strconv.FormatInt(l.DowntimeMS, 10),
		labelFormat: strconv.Itoa(FormatVersion),
	}
	if l.Counted {
		m[labelFiles], m[labelBytes] = strconv.FormatInt(l.Files, 10), strconv.FormatInt(l.Bytes, 10)
	}
	if len(l.Dumps) > 0 {
		if b, err := json.Marshal(l.Dumps); err == nil {
			m[labelDumps] = string(b)
		}
	}
	if len(l.PhasesMS) > 0 {
		if b, err := json.Marshal(l.PhasesMS); err == nil {
			m[labelPhases] = string(b)
		}
	}
	return m
}

func engineLabels(m map[string]string, id, name string) {
	if id != "" {
		m[labelEngineID] = id
	}
	if name != "" {
		m[labelEngine] = name
	}
}

// markSuspect records the anomaly guard's reasons in a point's labels.
func markSuspect(tags map[string]string, reasons []string) {
	if len(reasons) == 0 {
		return
	}
	b, err := json.Marshal(reasons)
	if err != nil {
		b = []byte(`["unrecorded"]`)
	}
	tags[labelSuspect], tags[labelAnomalies] = "true", string(b)
}

// verdict reads back what markSuspect and pointLabels recorded.
func verdict(p *Point, tags map[string]string) {
	p.AddedBytes = labelOr(tags[labelAdded], 0)
	if v := tags[labelDumps]; v != "" {
		// Unreadable sizes are unknown sizes: the guard skips them.
		_ = json.Unmarshal([]byte(v), &p.Dumps)
	}
	if v := tags[labelPhases]; v != "" {
		// Timings only inform: unreadable ones are left out.
		_ = json.Unmarshal([]byte(v), &p.PhasesMS)
	}
	p.Suspect = tags[labelSuspect] == "true"
	if p.Suspect {
		if err := json.Unmarshal([]byte(tags[labelAnomalies]), &p.Anomalies); err != nil || len(p.Anomalies) == 0 {
			p.Anomalies = []string{"unreadable reasons: " + tags[labelAnomalies]}
		}
	}
}
