// Package server is lifeboat serve's HTTP face: the REST API under
// /api/v1, /healthz, Prometheus /metrics, and (later) the web UI, all
// behind one bearer token. It holds no logic of its own: a Backend (the
// daemon) does the work.
package server

import (
	"context"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/scheduler"
	"github.com/lifeboat-backup/lifeboat/internal/secret"
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
	WriteMetrics(w io.Writer)
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
)

// Options of a Server.
type Options struct {
	Token   secret.Value
	Backend Backend
	Log     *slog.Logger
	// UI, when set, serves the web UI at / (it handles its own login page
	// and is given the same authentication).
	UI http.Handler
}

// CookieName holds the token for the web UI: HttpOnly, SameSite strict, so
// page scripts never see it and it never appears in a URL.
const CookieName = "lifeboat_token"

//go:embed openapi.json
var openapi []byte

// New returns the handler of everything lifeboat serve answers.
func New(opts Options) http.Handler {
	s := &server{opts: opts, b: opts.Backend}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	auth := func(pattern string, h http.HandlerFunc) { mux.Handle(pattern, s.authed(h)) }
	auth("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		s.b.WriteMetrics(w)
	})
	auth("GET /api/v1/openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(openapi)
	})
	mux.HandleFunc("POST /api/v1/login", s.login)
	mux.HandleFunc("POST /api/v1/logout", s.logout)
	auth("GET /api/v1/units", s.units)
	auth("GET /api/v1/points", s.points)
	auth("GET /api/v1/points/{id}", s.point)
	auth("GET /api/v1/points/{id}/files", s.files)
	auth("GET /api/v1/points/{id}/download", s.download)
	auth("GET /api/v1/jobs", s.jobs)
	auth("POST /api/v1/jobs", s.submit)
	auth("GET /api/v1/jobs/{id}", s.job)
	auth("POST /api/v1/jobs/{id}/cancel", s.cancel)
	auth("GET /api/v1/repository", s.repository)
	auth("POST /api/v1/restore/plan", s.planRestore)
	if opts.UI != nil {
		mux.Handle("/", opts.UI)
	}
	return securityHeaders(mux)
}

type server struct {
	opts Options
	b    Backend
}

// Authorized reports whether a request carries the token, as a bearer
// header or the UI's cookie. The compare takes the same time whatever the
// guess.
func (s *server) Authorized(r *http.Request) bool {
	got := ""
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		got = strings.TrimPrefix(h, "Bearer ")
	} else if c, err := r.Cookie(CookieName); err == nil {
		got = c.Value
	}
	want := s.opts.Token.Reveal()
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func (s *server) authed(h http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Authorized(r) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lifeboat"`)
			writeError(w, http.StatusUnauthorized, errors.New("missing or wrong token: send Authorization: Bearer TOKEN (the token is in the daemon's token file)"))
			return
		}
		h(w, r)
	})
}

// login trades the token for the HttpOnly cookie the web UI runs on.
func (s *server) login(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Token string `json:"token"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, errors.New(`send {"token": "…"}`))
		return
	}
	want := s.opts.Token.Reveal()
	if want == "" || subtle.ConstantTimeCompare([]byte(body.Token), []byte(want)) != 1 {
		// A wrong guess costs time: online guessing stays slow.
		time.Sleep(500 * time.Millisecond)
		writeError(w, http.StatusUnauthorized, errors.New("wrong token"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: body.Token, Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged in"})
}

func (s *server) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	writeJSON(w, http.StatusOK, map[string]string{"status": "logged out"})
}

func (s *server) units(w http.ResponseWriter, r *http.Request) {
	u, err := s.b.Units(r.Context())
	respond(w, u, err)
}

func (s *server) points(w http.ResponseWriter, r *http.Request) {
	p, err := s.b.Points(r.Context(), r.URL.Query().Get("unit"))
	if p == nil {
		p = []repository.Point{}
	}
	respond(w, p, err)
}

func (s *server) point(w http.ResponseWriter, r *http.Request) {
	p, err := s.b.Point(r.Context(), r.PathValue("id"))
	respond(w, p, err)
}

func (s *server) files(w http.ResponseWriter, r *http.Request) {
	entries, err := s.b.ReadDir(r.Context(), r.PathValue("id"), r.URL.Query().Get("path"))
	if entries == nil {
		entries = []repository.DirEntry{}
	}
	respond(w, entries, err)
}

func (s *server) download(w http.ResponseWriter, r *http.Request) {
	rc, st, err := s.b.Open(r.Context(), r.PathValue("id"), r.URL.Query().Get("path"))
	if err != nil {
		writeError(w, status(err), err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(st.Size))
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", st.Name))
	if _, err := io.Copy(w, rc); err != nil {
		s.opts.Log.Warn("download cut", "point", r.PathValue("id"), "err", err)
	}
}

func (s *server) jobs(w http.ResponseWriter, _ *http.Request) {
	j := s.b.Jobs()
	if j == nil {
		j = []Job{}
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *server) job(w http.ResponseWriter, r *http.Request) {
	j, ok := s.b.Job(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("no job %s: see GET /api/v1/jobs", r.PathValue("id")))
		return
	}
	writeJSON(w, http.StatusOK, j)
}

func (s *server) submit(w http.ResponseWriter, r *http.Request) {
	var req JobRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("job request: %w", err))
		return
	}
	j, err := s.b.Submit(r.Context(), req)
	if err != nil {
		writeError(w, status(err), err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

func (s *server) cancel(w http.ResponseWriter, r *http.Request) {
	if err := s.b.Cancel(r.PathValue("id")); err != nil {
		writeError(w, status(err), err)
		return
	}
	j, _ := s.b.Job(r.PathValue("id"))
	writeJSON(w, http.StatusAccepted, j)
}

func (s *server) planRestore(w http.ResponseWriter, r *http.Request) {
	var req RestoreRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("restore request: %w", err))
		return
	}
	p, err := s.b.PlanRestore(r.Context(), req)
	respond(w, p, err)
}

func (s *server) repository(w http.ResponseWriter, r *http.Request) {
	st, err := s.b.Repository(r.Context())
	respond(w, st, err)
}

func respond(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, status(err), err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func status(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest), errors.Is(err, repository.ErrAmbiguousRef):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound), errors.Is(err, repository.ErrNoSuchPath), errors.Is(err, repository.ErrNoSuchPoint):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// securityHeaders keeps pages out of frames and other origins' scripts.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "no-referrer")
		w.Header().Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'")
		h.ServeHTTP(w, r)
	})
}
