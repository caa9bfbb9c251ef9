package server

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// Backend is what the API exposes.
type Backend interface {
	Units(ctx context.Context) ([]UnitStatus, error)
	Points(ctx context.Context, unit string) ([]repository.Point, error)
	Point(ctx context.Context, id string) (repository.Point, error)
	ReadDir(ctx context.Context, id, path string) ([]repository.DirEntry, error)
	Open(ctx context.Context, id, path string) (io.ReadCloser, repository.DirEntry, error)
	Jobs() []Job
	Job(id string) (Job, bool)
	Submit(ctx context.Context, req JobRequest) (Job, error)
	Cancel(id string) error
	// PlanRestore is a restore's dry run: what it would create or refuse.
	PlanRestore(ctx context.Context, req RestoreRequest) (any, error)
	Repository(ctx context.Context) (RepoStatus, error)
	// Collector reports the daemon's state as Prometheus metrics.
	Collector() prometheus.Collector
}

// UnitStatus is a unit as the dashboard shows it.
type UnitStatus struct {
	backup.UnitInfo
	Schedule        string     `json:"schedule,omitempty"`
	NextRun         *time.Time `json:"next_run,omitempty"`
	LastSuccess     *time.Time `json:"last_success,omitempty"`
	LastPoint       string     `json:"last_point,omitempty"`
	LastDowntimeMS  int64      `json:"last_downtime_ms"`
	LastBytes       int64      `json:"last_bytes"`            // added to the repository by the last backup
	LastSize        int64      `json:"last_size"`             // the unit's data in its newest point
	LastResult      string     `json:"last_result,omitempty"` // succeeded, failed, cancelled
	LastError       string     `json:"last_error,omitempty"`
	Points          int        `json:"points"`
	Overdue         bool       `json:"overdue"` // the last success is older than the schedule allows
	RunningJob      string     `json:"running_job,omitempty"`
	ProtectionState string     `json:"protection"` // protected, unprotected, failing, overdue, never
}

// Job is one job as the API shows it: the queue's record, and the
// progress of a running one.
type Job struct {
	scheduler.Job
	Progress *Progress `json:"progress,omitempty"`
}

// Progress is a running job's counters.
type Progress struct {
	FilesDone  int64 `json:"files_done"`
	FilesTotal int64 `json:"files_total"`
	BytesDone  int64 `json:"bytes_done"`
	BytesTotal int64 `json:"bytes_total"`
}

// JobRequest starts a job.
type JobRequest struct {
	Kind    string          `json:"kind"` // backup, restore, replicate, check, forget
	Unit    string          `json:"unit,omitempty"`
	Restore *RestoreRequest `json:"restore,omitempty"`
}

// RestoreRequest says what a restore job brings back, as the CLI's flags.
type RestoreRequest struct {
	Point     string `json:"point"`
	Container string `json:"container,omitempty"`
	Volume    string `json:"volume,omitempty"`
	Path      string `json:"path,omitempty"`
	Target    string `json:"target,omitempty"`
	As        string `json:"as,omitempty"`
	Force     bool   `json:"force,omitempty"`
	DryRun    bool   `json:"dry_run,omitempty"`
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

// Errors a Backend returns, mapped to HTTP statuses.
var (
	ErrBadRequest = errors.New("bad request")
	ErrNotFound   = errors.New("not found")
	ErrConflict   = errors.New("conflict")
	ErrForbidden  = errors.New("forbidden")
)
