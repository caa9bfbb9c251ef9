package server

import (
	"context"
	"io"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeboat-backup/lifeboat/internal/api"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
)

// Backend is what the API exposes.
type Backend interface {
	Units(ctx context.Context) ([]UnitStatus, error)
	// Engines are the engines serve protects and their health.
	Engines(ctx context.Context) ([]EngineStatus, error)
	Points(ctx context.Context, unit string) ([]repository.Point, error)
	Point(ctx context.Context, id string) (repository.Point, error)
	ReadDir(ctx context.Context, id, path string) ([]repository.DirEntry, error)
	Open(ctx context.Context, id, path string) (io.ReadCloser, repository.DirEntry, error)
	Jobs() []Job
	Job(id string) (Job, bool)
	Submit(ctx context.Context, req JobRequest) (Job, error)
	Cancel(id string) error
	// PlanRestore is a restore's dry run: what it would create or refuse.
	PlanRestore(ctx context.Context, req RestoreRequest) (restore.Plan, error)
	Repository(ctx context.Context) (RepoStatus, error)
	// Ack acknowledges a suspect point's anomaly.
	Ack(ctx context.Context, id string) (repository.AckResult, error)
	// Collector reports the daemon's state as Prometheus metrics.
	Collector() prometheus.Collector
}

// The API's types live in internal/api, beside the operations' requests:
// the daemon implements Backend without importing this package.
type (
	UnitStatus     = api.UnitStatus
	EngineStatus   = api.EngineStatus
	Job            = api.Job
	JobRequest     = api.JobRequest
	RestoreRequest = ops.RestoreRequest
	RepoStatus     = api.RepoStatus
)

// Errors a Backend returns, mapped to HTTP statuses.
var (
	ErrBadRequest = api.ErrBadRequest
	ErrNotFound   = api.ErrNotFound
	ErrConflict   = api.ErrConflict
	ErrForbidden  = api.ErrForbidden
)
