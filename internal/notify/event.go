package notify

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Event is what a webhook receives, and what the other targets get as a
// title and a message.
type Event struct {
	Event   string    `json:"event"` // job.failed, backup.succeeded, drill.passed, point.suspect
	Host    string    `json:"host"`
	Job     string    `json:"job"`
	Kind    string    `json:"kind"`
	Unit    string    `json:"unit,omitempty"`
	Error   string    `json:"error"`
	Point   string    `json:"point,omitempty"` // the point made, drilled, or marked suspect
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
}

// Event names.
const (
	JobFailed       = "job.failed"
	BackupSucceeded = "backup.succeeded"
	DrillPassed     = "drill.passed"
	PointSuspect    = "point.suspect"
)

// Classes a target subscribes to with its events list.
const (
	ClassFailure = "failure"
	ClassSuccess = "success"
	ClassDrill   = "drill"
	ClassAnomaly = "anomaly"
)

// Classes are every class a target may name.
var Classes = []string{ClassFailure, ClassSuccess, ClassDrill, ClassAnomaly}

// DefaultClasses are what a target without an events list gets: what
// needs a person, not the news that all is well.
var DefaultClasses = []string{ClassFailure, ClassAnomaly}

// CheckClasses accepts an events list of a target.
func CheckClasses(list []string) error {
	for _, c := range list {
		if !slices.Contains(Classes, c) {
			return fmt.Errorf("unknown event %q: use %s", c, strings.Join(Classes, ", "))
		}
	}
	return nil
}

// classes are the classes ev belongs to: a failed drill is a failure and
// a drill's verdict.
func (ev Event) classes() []string {
	switch ev.Event {
	case JobFailed:
		if ev.Kind == "drill" {
			return []string{ClassFailure, ClassDrill}
		}
		return []string{ClassFailure}
	case BackupSucceeded:
		return []string{ClassSuccess}
	case DrillPassed:
		return []string{ClassDrill}
	case PointSuspect:
		return []string{ClassAnomaly}
	}
	return nil
}

// wants says whether a target subscribed to events gets ev.
func wants(events []string, ev Event) bool {
	if len(events) == 0 {
		events = DefaultClasses
	}
	for _, c := range ev.classes() {
		if slices.Contains(events, c) {
			return true
		}
	}
	return false
}

// Title is one line that says what happened, for a subject or a push.
func (ev Event) Title() string {
	what := ev.Kind
	if ev.Unit != "" {
		what += " of " + ev.Unit
	}
	var verb string
	switch ev.Event {
	case JobFailed:
		verb = "failed"
	case BackupSucceeded:
		verb = "succeeded"
	case DrillPassed:
		verb = "passed"
	case PointSuspect:
		what, verb = "restore point of "+ev.Unit, "is suspect"
	default:
		verb = ev.Event
	}
	t := "lifeboat: " + what + " " + verb
	if ev.Host != "" {
		t += " on " + ev.Host
	}
	return t
}

// Message is the body: the error (or the anomalies) and the facts a
// person needs to find the job.
func (ev Event) Message() string {
	var b strings.Builder
	b.WriteString(ev.Title())
	b.WriteString("\n")
	if ev.Error != "" {
		label := "error"
		if ev.Event == PointSuspect {
			label = "anomalies"
		}
		fmt.Fprintf(&b, "%s: %s\n", label, ev.Error)
	}
	if ev.Point != "" {
		fmt.Fprintf(&b, "point: %s\n", ev.Point)
	}
	if ev.Job != "" {
		fmt.Fprintf(&b, "job: %s\n", ev.Job)
	}
	if !ev.Started.IsZero() && !ev.Ended.IsZero() {
		fmt.Fprintf(&b, "took: %s\n", ev.Ended.Sub(ev.Started).Round(100*time.Millisecond))
	}
	return strings.TrimSuffix(b.String(), "\n")
}
