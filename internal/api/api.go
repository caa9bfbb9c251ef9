// Package api holds the types of lifeboat's REST API: what the daemon
// serves and the HTTP server encodes. The requests are the operations'
// own (internal/ops), so the API, the CLI's --json and the web UI speak
// the same structs. The OpenAPI document is generated from these types.
package api

import (
	"errors"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// UnitStatus is a unit as the dashboard shows it.
type UnitStatus struct {
	backup.UnitInfo
	// Engine is the name of the engine the unit is on (serve's
	// engines:, "local" for DOCKER_HOST's); its units are named
	// ENGINE/KIND/NAME when there is more than one.
	Engine         string     `json:"engine"`
	Schedule       string     `json:"schedule,omitempty"`
	NextRun        *time.Time `json:"next_run,omitempty"`
	LastSuccess    *time.Time `json:"last_success,omitempty"`
	LastPoint      string     `json:"last_point,omitempty"`
	LastDowntimeMS int64      `json:"last_downtime_ms"`
	LastBytes      int64      `json:"last_bytes"`            // added to the repository by the last backup
	LastSize       int64      `json:"last_size"`             // the unit's data in its newest point
	LastResult     string     `json:"last_result,omitempty"` // succeeded, failed, cancelled
	LastError      string     `json:"last_error,omitempty"`
	Points         int        `json:"points"`
	Overdue        bool       `json:"overdue"` // the last success is older than the schedule allows
	RunningJob     string     `json:"running_job,omitempty"`
	// Suspect: the newest point is one the anomaly guard marked and
	// nobody acknowledged; retention keeps the good points before it.
	Suspect bool `json:"suspect"`
	// The unit's drills: their schedule (lifeboat.drill, else
	// drills.schedule), when the next is due, and the newest drill of any
	// of its points.
	DrillSchedule   string                   `json:"drill_schedule,omitempty"`
	NextDrill       *time.Time               `json:"next_drill,omitempty"`
	LastDrill       *repository.DrillSummary `json:"last_drill,omitempty"`
	LastDrillPoint  string                   `json:"last_drill_point,omitempty"`
	ProtectionState string                   `json:"protection"` // protected, unprotected, failing, overdue, never
}

// Job is one job as the API shows it: the queue's record, and the
// progress of a running one.
type Job struct {
	scheduler.Job
	Progress *progress.Snapshot `json:"progress,omitempty"`
}

// JobRequest starts a job.
type JobRequest struct {
	Kind    string              `json:"kind"` // backup, restore, drill, replicate, offsite-verify, check, forget, maintenance
	Unit    string              `json:"unit,omitempty"`
	Restore *ops.RestoreRequest `json:"restore,omitempty"`
	// Drill names the point of a drill job; without it, a drill of unit
	// drills the unit's newest point.
	Drill *ops.DrillRequest `json:"drill,omitempty"`
	// Engine is the engine a restore or drill acts on, with more than
	// one; by default the engine whose units the point holds.
	Engine string `json:"engine,omitempty"`
}

// RepoStatus is the repository and its offsite copy.
type RepoStatus struct {
	Location        string     `json:"location"`
	Units           int        `json:"units"`
	Points          int        `json:"points"`
	SizeBytes       int64      `json:"size_bytes"`
	LastCheck       *time.Time `json:"last_check,omitempty"`
	LastCheckOK     bool       `json:"last_check_ok"`
	LastCheckError  string     `json:"last_check_error,omitempty"`
	Offsite         string     `json:"offsite,omitempty"`
	LastReplication *time.Time `json:"last_replication,omitempty"`
	ReplicationLag  string     `json:"replication_lag,omitempty"`
	LastReplError   string     `json:"last_replication_error,omitempty"`
}

// Error is how the API and the CLI's --json say that something failed:
// the same object on an HTTP error body and on the CLI's stderr.
type Error struct {
	MessageType string `json:"message_type"` // "error"
	Error       string `json:"error"`
	Hint        string `json:"hint,omitempty"`      // what to do about it
	ExitCode    int    `json:"exit_code,omitempty"` // the CLI's exit status
}

// NewError is err as an Error.
func NewError(err error, hint string, exitCode int) Error {
	return Error{MessageType: "error", Error: err.Error(), Hint: hint, ExitCode: exitCode}
}

// Errors the daemon returns, mapped to HTTP statuses (ops.ErrInvalid is a
// bad request too).
var (
	ErrBadRequest = errors.New("bad request")
	ErrNotFound   = errors.New("not found")
	ErrConflict   = errors.New("conflict")
	ErrForbidden  = errors.New("forbidden")
)

// EngineStatus is one engine serve protects, and its health; the CLI's
// `lifeboat engines` reports the same.
type EngineStatus = ops.EngineStatus
