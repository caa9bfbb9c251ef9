package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
)

// fakeBackend stands in for the daemon: the server's own logic (who may
// do what, what is masked) needs no engine or repository.
type fakeBackend struct {
	mu        sync.Mutex
	submitted []JobRequest
	planned   []RestoreRequest
}

// configJSON is a container's captured configuration as backup writes it.
const configJSON = `{
  "name": "db",
  "config": {
    "Env": ["POSTGRES_PASSWORD=hunter2", "API_TOKEN=tok-123", "AWS_SECRET_ACCESS_KEY=sk-456", "SSH_KEY=key-789",
            "DB_PASSWORD_FILE=/run/secrets/db", "PLAIN=visible"],
    "Labels": {"com.example.db.password": "label-pw", "com.example.team": "infra"}
  },
  "host_config": {"Binds": ["/srv/db:/var/lib/postgresql/data"]}
}`

var files = map[string]string{
	"lifeboat.json":               `{"format_version": 1, "unit": "project/app", "containers": [{"name": "db"}]}`,
	"containers/db/config.json":   configJSON,
	"containers/db/image.json":    `{"name": "postgres:16"}`,
	"volumes/app_data/secret.txt": "file-content-4242",
	"dumps/db/all.sql":            "INSERT INTO users VALUES ('dump-secret');",
}

// secrets are the values no role below admin may see.
var secrets = []string{"hunter2", "tok-123", "sk-456", "key-789", "label-pw", "/run/secrets/db", "file-content-4242", "dump-secret"}

func (f *fakeBackend) Units(context.Context) ([]UnitStatus, error) { return []UnitStatus{}, nil }
func (f *fakeBackend) Engines(context.Context) ([]EngineStatus, error) {
	return []EngineStatus{{Name: "local", Host: "unix:///var/run/docker.sock", Reachable: true, Concurrency: 1}}, nil
}
func (f *fakeBackend) Points(context.Context, string) ([]repository.Point, error) {
	// A replicated point carries its offsite lock date; the contract
	// test checks the field is in the schema.
	until := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	return []repository.Point{{ID: "p1", Unit: "project/app", OffsiteLockedUntil: &until, DurationMS: 1200, PhasesMS: map[string]int64{"live_pass": 900, "freeze": 20, "frozen_pass": 40, "store": 100}}, {ID: "p2", Unit: "project/app"}}, nil
}
func (f *fakeBackend) Point(_ context.Context, id string) (repository.Point, error) {
	return repository.Point{ID: id}, nil
}
func (f *fakeBackend) ReadDir(context.Context, string, string) ([]repository.DirEntry, error) {
	return []repository.DirEntry{{Name: "lifeboat.json", Type: "file"}}, nil
}

func (f *fakeBackend) Open(_ context.Context, _, path string) (io.ReadCloser, repository.DirEntry, error) {
	body, ok := files[path]
	if !ok {
		return nil, repository.DirEntry{}, repository.ErrNoSuchPath
	}
	return io.NopCloser(strings.NewReader(body)), repository.DirEntry{Name: path, Type: "file", Size: int64(len(body))}, nil
}

func (f *fakeBackend) Jobs() []Job               { return []Job{} }
func (f *fakeBackend) Job(id string) (Job, bool) { return Job{Job: scheduler.Job{ID: id}}, true }

// Submit opens a file, as the daemon opens the engine's socket for a job:
// when slow clients have used up the descriptors, it fails.
func (f *fakeBackend) Submit(_ context.Context, req JobRequest) (Job, error) {
	fd, err := os.Open(os.DevNull)
	if err != nil {
		return Job{}, err
	}
	fd.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submitted = append(f.submitted, req)
	return Job{Job: scheduler.Job{ID: "j1", Kind: req.Kind, State: scheduler.Queued}}, nil
}

func (f *fakeBackend) submits() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.submitted)
}

func (f *fakeBackend) Cancel(string) error { return nil }
func (f *fakeBackend) PlanRestore(_ context.Context, req RestoreRequest) (restore.Plan, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.planned = append(f.planned, req)
	return restore.Plan{Create: []string{}}, nil
}
func (f *fakeBackend) Repository(context.Context) (RepoStatus, error) { return RepoStatus{}, nil }

var fakeGauge = prometheus.NewDesc("lifeboat_jobs_running", "jobs running", nil, nil)

type fakeCollector struct{}

func (fakeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- fakeGauge }
func (fakeCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(fakeGauge, prometheus.GaugeValue, 2)
}
func (f *fakeBackend) Collector() prometheus.Collector { return fakeCollector{} }

// Tokens of the test server, one per role.
const (
	viewerToken   = "viewer-0123456789abcdef0123456789abcdef"
	operatorToken = "operator-0123456789abcdef0123456789abcd"
	adminToken    = "admin-0123456789abcdef0123456789abcdef0"
)

func testOptions(b Backend) Options {
	return Options{Backend: b, loginDelay: time.Millisecond, Credentials: []Credential{
		{Role: Viewer, Hash: HashToken(viewerToken)},
		{Role: Operator, Hash: HashToken(operatorToken)},
		{Role: Admin, Hash: HashToken(adminToken)},
	}}
}

// req is one request to the handler; token "" sends none.
type req struct {
	method, path, body, token, ctype string
	cookie                           *http.Cookie
	header                           map[string]string
}

func do(t *testing.T, h http.Handler, r req) *httptest.ResponseRecorder {
	t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, "http://lifeboat.test"+r.path, body)
	if r.token != "" {
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.ctype == "" && r.body != "" {
		r.ctype = "application/json"
	}
	if r.ctype != "-" && r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	if r.cookie != nil {
		hr.AddCookie(r.cookie)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, hr)
	return w
}

func (f *fakeBackend) Ack(_ context.Context, id string) (repository.AckResult, error) {
	if id != "p1" {
		return repository.AckResult{}, fmt.Errorf("%w: %w", ErrConflict, repository.ErrNotSuspect)
	}
	return repository.AckResult{Point: repository.Point{ID: id, Unit: "volume/data", Suspect: true, Acked: true}}, nil
}
