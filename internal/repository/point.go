package repository

import (
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
	ID          string    `json:"id"`
	Unit        string    `json:"unit"`
	Kind        string    `json:"kind"`
	Host        string    `json:"host"`
	Time        time.Time `json:"time"`
	Consistency string    `json:"consistency"`
	DowntimeMS  int64     `json:"downtime_ms"`
	Bytes       int64     `json:"bytes"`
	Files       int64     `json:"files"`
	Trigger     string    `json:"trigger"`
	DurationMS  int64     `json:"duration_ms"`
	// LastDrill is the newest restore drill of the point; nil if never
	// drilled.
	LastDrill *DrillSummary `json:"last_drill,omitempty"`
}

// Label keys, stored as kopia manifest tags (which need the "tag:" prefix).
const (
	labelUnit        = "tag:lifeboat.unit"
	labelKind        = "tag:lifeboat.kind"
	labelHost        = "tag:lifeboat.host"
	labelTrigger     = "tag:lifeboat.trigger"
	labelConsistency = "tag:lifeboat.consistency"
	labelDowntime    = "tag:lifeboat.downtime_ms"
	labelFormat      = "tag:lifeboat.format"
	labelFiles       = "tag:lifeboat.files"
	labelBytes       = "tag:lifeboat.bytes"
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
	return m
}
