// Package policy turns container and volume labels (and, later, the daemon's
// config file) into what to protect, how, when and for how long.
package policy

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/anomaly"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// Label keys users put on containers and volumes.
const (
	LabelEnable      = "lifeboat.enable"
	LabelConsistency = "lifeboat.consistency"
	LabelExclude     = "lifeboat.exclude"
	LabelSchedule    = "lifeboat.schedule"
	LabelRetention   = "lifeboat.retention"
	LabelImages      = "lifeboat.images"
	// LabelDrill schedules restore drills of the unit's newest point
	// (cron or @every), or turns them off with "never".
	LabelDrill = "lifeboat.drill"
	// The anomaly guard: off, and its thresholds (see package anomaly).
	LabelAnomaly       = "lifeboat.anomaly"
	LabelAnomalyShrink = "lifeboat.anomaly.shrink"
	LabelAnomalyChurn  = "lifeboat.anomaly.churn"
	LabelAnomalySlow   = "lifeboat.anomaly.slow"
)

// labelKeys are every label Resolve reads.
var labelKeys = []string{LabelEnable, LabelConsistency, LabelExclude, LabelSchedule, LabelRetention, LabelImages,
	LabelAnomaly, LabelAnomalyShrink, LabelAnomalyChurn, LabelAnomalySlow, LabelDrill, LabelNotify, LabelPing}

// Modes are the consistency modes a label or flag may name.
var Modes = []string{"auto", "none", "pause", "stop", "snapshot", "dump"}

// Policy is what applies to one unit.
type Policy struct {
	Enabled     bool      `json:"enabled"`
	Consistency string    `json:"consistency"`
	Exclude     []string  `json:"exclude,omitempty"`
	Schedule    string    `json:"schedule,omitempty"`
	Retention   Retention `json:"retention"`
	Images      string    `json:"images"`
	Drill       string    `json:"drill,omitempty"` // when to drill the newest point; "" or never: not on a schedule
	// Anomaly tunes the anomaly guard; zero fields mean its defaults.
	Anomaly anomaly.Thresholds `json:"anomaly,omitzero"`
	// Notify are the notify targets of the unit's events (lifeboat.notify);
	// none: the config's default routes.
	Notify []string `json:"notify,omitempty"`
	// Ping is the dead-man check's URL; its path is a secret, so only
	// PingTo, its scheme and host, is ever shown.
	Ping   string `json:"-"`
	PingTo string `json:"ping_to,omitempty"`
	// Sources says where each setting came from ("label on web", "default"),
	// so `lifeboat ls` can explain itself.
	Sources map[string]string `json:"sources,omitempty"`
}

// Defaults apply where no label speaks.
type Defaults struct {
	Enabled     bool
	Consistency string
	Images      string
	Retention   Retention
	Schedule    string // "" : only units with a lifeboat.schedule label run on their own
	Drill       string // "" : only units with a lifeboat.drill label are drilled on their own
	Ping        string // "" : only units with a lifeboat.ping label are pinged
	Priority    string // a job's priority where it names none: "" is low
}

// DefaultDefaults protect everything, in auto mode, keeping image references.
var DefaultDefaults = Defaults{Enabled: true, Consistency: "auto", Images: "ref"}

// Labelled is one source of labels: a container or a volume, named for
// messages.
type Labelled struct {
	Name   string
	Labels map[string]string
}

// Resolve merges the labels of every container (and volume) of a unit. A
// setting given with different values on two members is an error, since
// guessing which one the user meant would silently change protection.
func Resolve(members []Labelled, d Defaults) (Policy, error) {
	p := Policy{Enabled: d.Enabled, Consistency: d.Consistency, Images: d.Images, Retention: d.Retention, Schedule: d.Schedule, Drill: d.Drill, Sources: map[string]string{}}
	for _, k := range []string{LabelEnable, LabelConsistency, LabelImages, LabelRetention} {
		p.Sources[k] = "default"
	}
	if d.Schedule != "" {
		p.Sources[LabelSchedule] = "default"
	}
	if d.Drill != "" {
		p.Sources[LabelDrill] = "default"
	}
	if d.Ping != "" {
		p.Ping, p.PingTo, p.Sources[LabelPing] = d.Ping, pingShown(d.Ping), "default"
	}
	values := map[string]string{}
	from := map[string]string{}
	for _, m := range members {
		for _, k := range labelKeys {
			v, ok := m.Labels[k]
			if !ok {
				continue
			}
			v = strings.TrimSpace(v)
			if prev, seen := values[k]; seen && prev != v && k == LabelPing {
				// The URL is a secret: name the members, not the values.
				return Policy{}, fmt.Errorf("label %s differs between %s and %s: make them agree", k, from[k], m.Name)
			}
			if prev, seen := values[k]; seen && prev != v && k != LabelExclude {
				return Policy{}, fmt.Errorf("label %s is %q on %s but %q on %s: make them agree", k, prev, from[k], v, m.Name)
			}
			if k == LabelExclude && values[k] != "" && v != "" {
				v = values[k] + "," + v
			}
			values[k], from[k] = v, m.Name
		}
	}
	for k, v := range values {
		if err := p.set(k, v); err != nil {
			return Policy{}, fmt.Errorf("label %s on %s: %w", k, from[k], err)
		}
		p.Sources[k] = "label on " + from[k]
	}
	return p, nil
}

func (p *Policy) set(key, v string) error {
	switch key {
	case LabelEnable:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}
		p.Enabled = b
	case LabelConsistency:
		if err := CheckMode(v); err != nil {
			return err
		}
		p.Consistency = v
	case LabelExclude:
		p.Exclude = splitList(v)
		if _, err := NewMatcher(p.Exclude); err != nil {
			return err
		}
	case LabelSchedule:
		if err := CheckSchedule(v); err != nil {
			return err
		}
		p.Schedule = v
	case LabelDrill:
		if v != "never" {
			if err := CheckSchedule(v); err != nil {
				return err
			}
		}
		p.Drill = v
	case LabelRetention:
		r, err := ParseRetention(v)
		if err != nil {
			return err
		}
		p.Retention = r
	case LabelImages:
		if err := CheckImages(v); err != nil {
			return err
		}
		p.Images = v
	case LabelAnomaly, LabelAnomalyShrink, LabelAnomalyChurn, LabelAnomalySlow:
		return p.setAnomaly(key, v)
	case LabelNotify:
		names, err := ParseNotify(v)
		if err != nil {
			return err
		}
		p.Notify = names
	case LabelPing:
		if err := CheckPing(v); err != nil {
			return err
		}
		p.Ping, p.PingTo = v, pingShown(v)
	}
	return nil
}

// setAnomaly reads the anomaly guard's labels: lifeboat.anomaly=off|on,
// and the thresholds as plain numbers.
func (p *Policy) setAnomaly(key, v string) error {
	if key == LabelAnomaly {
		switch strings.ToLower(v) {
		case "off", "false":
			p.Anomaly.Off = true
		case "on", "true":
			p.Anomaly.Off = false
		default:
			return fmt.Errorf("%q is not on or off", v)
		}
		return nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil {
		return fmt.Errorf("%q is not a number", v)
	}
	switch key {
	case LabelAnomalyShrink:
		if !(f > 0 && f < 1) {
			return fmt.Errorf("%s is a fraction between 0 and 1 (0.5: flag a point with less than half the usual files or bytes)", v)
		}
		p.Anomaly.Shrink = f
	case LabelAnomalyChurn:
		if !(f > 0 && f <= 10) {
			return fmt.Errorf("%s is a fraction above 0 (0.5: flag a point that stores half its bytes anew)", v)
		}
		p.Anomaly.Churn = f
	case LabelAnomalySlow:
		if !(f > 1 && f <= 1000) {
			return fmt.Errorf("%s is a factor above 1 (5: flag a backup five times slower than usual)", v)
		}
		p.Anomaly.Slow = f
	}
	return nil
}

// CheckMode accepts a consistency mode, or a fallback list such as
// "snapshot,pause". An alternative may add dump to a file mode, as in
// "dump+pause": the databases are dumped and their files captured too.
func CheckMode(v string) error {
	for _, alt := range splitList(v) {
		parts := strings.Split(alt, "+")
		files := 0
		for _, m := range parts {
			if !contains(Modes, m) {
				return fmt.Errorf("unknown consistency %q: use %s, or dump+pause (dump+stop, dump+snapshot)", m, strings.Join(Modes, ", "))
			}
			if m != "dump" {
				files++
			}
		}
		if len(parts) > 1 && (files != 1 || !contains(parts, "dump") || contains(parts, "auto")) {
			return fmt.Errorf("consistency %q: only dump combines with one of none, pause, stop or snapshot, as in dump+pause", alt)
		}
	}
	if v == "" {
		return fmt.Errorf("empty consistency: use %s", strings.Join(Modes, ", "))
	}
	return nil
}

// CheckImages accepts an images policy such as "save" or "commit,push".
func CheckImages(v string) error {
	for _, m := range splitList(v) {
		if !contains([]string{"none", "ref", "save", "push", "commit"}, m) {
			return fmt.Errorf("unknown images policy %q: use none, ref, save, push or commit", m)
		}
	}
	if v == "" {
		return fmt.Errorf("empty images policy: use none, ref, save, push or commit")
	}
	return nil
}

// CheckSchedule accepts "@every DURATION", the cron shorthands and
// five-field cron expressions (checked for shape here; the scheduler
// parses them fully).
func CheckSchedule(v string) error {
	_, err := scheduler.Parse(v)
	return err
}

func splitList(v string) []string {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			out = append(out, s)
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Keys returns m's keys sorted, for stable output.
func Keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
