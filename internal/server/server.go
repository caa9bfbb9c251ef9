// Package server is lifeboat serve's HTTP face: the REST API under
// /api/v1, /healthz, Prometheus /metrics and the web UI, behind tokens of
// three roles (viewer, operator, admin), browser sessions, cross-origin
// protection and connection limits. It holds no logic of its own: a
// Backend (the daemon) does the work.
package server

import (
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/lifeboat-backup/lifeboat/internal/api"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// Options of a Server.
type Options struct {
	// Credentials are the tokens the API accepts, hashed.
	Credentials []Credential
	Backend     Backend
	Log         *slog.Logger
	// UI, when set, serves the web UI at / (it signs in through
	// /api/v1/login and runs on the session cookie).
	UI http.Handler
	// SessionTTL is how long a sign-in lasts; 12h when zero.
	SessionTTL time.Duration
	// MaxBody caps request bodies; 1 MiB when zero.
	MaxBody int64

	loginDelay time.Duration    // after a wrong token; tests shorten it
	now        func() time.Time // the sessions' clock; tests move it
}

// CookieName holds the web UI's session ID: HttpOnly, SameSite strict, so
// page scripts never see it and other sites' requests never carry it.
const CookieName = "lifeboat_session"

//go:embed openapi.json
var openapi []byte

// New returns the handler of everything lifeboat serve answers.
func New(opts Options) http.Handler {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.MaxBody <= 0 {
		opts.MaxBody = 1 << 20
	}
	if opts.loginDelay == 0 {
		opts.loginDelay = 500 * time.Millisecond
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	s := &server{opts: opts, b: opts.Backend, sessions: newSessions(opts.SessionTTL)}
	if opts.now != nil {
		s.sessions.now = opts.now
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(opts.Backend.Collector())
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{ErrorLog: slogPrinter{opts.Log}})

	mux := http.NewServeMux()
	for _, rt := range s.routes(metrics) {
		if rt.role == NoRole {
			mux.Handle(rt.pattern, rt.h)
			continue
		}
		mux.Handle(rt.pattern, s.need(rt.role, rt.h))
	}
	if opts.UI != nil {
		mux.Handle("/", opts.UI)
	}
	return securityHeaders(crossOrigin(limitBody(opts.MaxBody, mux)))
}

type server struct {
	opts     Options
	b        Backend
	sessions *sessions
}

// slogPrinter lets promhttp log through slog.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Warn("metrics", "err", fmt.Sprint(v...)) }

func (s *server) units(w http.ResponseWriter, r *http.Request) {
	u, err := s.b.Units(r.Context())
	respond(w, u, err)
}

func (s *server) engines(w http.ResponseWriter, r *http.Request) {
	e, err := s.b.Engines(r.Context())
	respond(w, e, err)
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

// download streams one file of a point. Below admin only captured
// metadata is served, with secret-looking values masked: file contents
// (volumes, binds, dumps, the files a VAR_FILE names) are the host's data.
func (s *server) download(w http.ResponseWriter, r *http.Request) {
	// The path checked is the path opened: no "a/../b" between the two.
	p := cleanPath(r.URL.Query().Get("path"))
	admin := roleFrom(r.Context()) >= Admin
	if !admin && !metadataFile(p) {
		writeError(w, http.StatusForbidden, fmt.Errorf("%w: downloading file contents needs the admin role; lower roles may read lifeboat.json and containers/NAME/config.json", ErrForbidden))
		return
	}
	rc, st, err := s.b.Open(r.Context(), r.PathValue("id"), p)
	if err != nil {
		writeError(w, status(err), err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", st.Name))
	if !admin {
		s.sendMasked(w, r, rc)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", fmt.Sprint(st.Size))
	if err := copyExtending(w, rc); err != nil {
		s.opts.Log.Warn("download cut", "point", r.PathValue("id"), "err", err)
	}
}

// maxMetadata bounds what is read to mask: a container's configuration is
// kilobytes.
const maxMetadata = 16 << 20

func (s *server) sendMasked(w http.ResponseWriter, r *http.Request, rc io.Reader) {
	b, err := io.ReadAll(io.LimitReader(rc, maxMetadata+1))
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Errorf("read %s: %w", r.URL.Query().Get("path"), err))
		return
	}
	out, ok := maskJSON(b)
	if !ok || len(b) > maxMetadata {
		writeError(w, http.StatusForbidden, fmt.Errorf("%w: this file could not be masked: it needs the admin role", ErrForbidden))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", fmt.Sprint(len(out)))
	w.Write(out)
}

// copyExtending copies a download of any size. The server's WriteTimeout
// would cut a long one; each chunk that goes out earns the connection
// another writeWindow instead, so only a client that stops reading is cut.
func copyExtending(w http.ResponseWriter, r io.Reader) error {
	rc := http.NewResponseController(w)
	buf := make([]byte, 256<<10)
	for {
		n, rerr := r.Read(buf)
		if n > 0 {
			// Not every ResponseWriter has deadlines (httptest's): then
			// the server's own timeouts are all there is.
			_ = rc.SetWriteDeadline(time.Now().Add(writeWindow))
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
		}
		if errors.Is(rerr, io.EOF) {
			return nil
		}
		if rerr != nil {
			return rerr
		}
	}
}

// writeWindow is how long one chunk of a download may take to go out.
const writeWindow = time.Minute

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
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("job request: %w", err))
		return
	}
	if req.Restore != nil && !s.mayRestore(w, r, *req.Restore) {
		return
	}
	j, err := s.b.Submit(r.Context(), req)
	if err != nil {
		writeError(w, status(err), err)
		return
	}
	writeJSON(w, http.StatusAccepted, j)
}

// mayRestore lets operators restore into Docker and only admins into a
// host directory: writing files as root where one chooses is root.
func (s *server) mayRestore(w http.ResponseWriter, r *http.Request, req RestoreRequest) bool {
	if (req.Target != "" || req.ComposeDir != "") && roleFrom(r.Context()) < Admin {
		writeError(w, http.StatusForbidden, fmt.Errorf("%w: restoring into a host directory needs the admin role; restore into Docker (volume, container, the unit) instead", ErrForbidden))
		return false
	}
	return true
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
	if err := decodeJSON(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, fmt.Errorf("restore request: %w", err))
		return
	}
	if !s.mayRestore(w, r, req) {
		return
	}
	p, err := s.b.PlanRestore(r.Context(), req)
	respond(w, p, err)
}

// ack acknowledges a suspect point: retention then treats its unit
// normally again.
func (s *server) ack(w http.ResponseWriter, r *http.Request) {
	res, err := s.b.Ack(r.Context(), r.PathValue("id"))
	respond(w, res, err)
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
	case errors.Is(err, ErrBadRequest), errors.Is(err, ops.ErrInvalid), errors.Is(err, repository.ErrAmbiguousRef):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound), errors.Is(err, repository.ErrNoSuchPath), errors.Is(err, repository.ErrNoSuchPoint):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden
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

// writeError answers with the error object the CLI's --json prints too.
func writeError(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, api.NewError(err, "", 0))
}

// route is one API endpoint: its method and path, the weakest role that
// may call it (NoRole: anyone), and its handler. The table is what the
// server serves and what the OpenAPI document is checked against.
type route struct {
	pattern string
	role    Role
	h       http.HandlerFunc
}

func (s *server) routes(metrics http.Handler) []route {
	return []route{
		{"GET /healthz", NoRole, func(w http.ResponseWriter, _ *http.Request) {
			writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
		}},
		{"GET /metrics", Viewer, metrics.ServeHTTP},
		{"GET /api/v1/openapi.json", Viewer, func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(openapi)
		}},
		{"POST /api/v1/login", NoRole, s.login},
		{"POST /api/v1/logout", NoRole, s.logout},
		{"GET /api/v1/session", Viewer, s.whoami},
		{"GET /api/v1/units", Viewer, s.units},
		{"GET /api/v1/engines", Viewer, s.engines},
		{"GET /api/v1/points", Viewer, s.points},
		{"GET /api/v1/points/{id}", Viewer, s.point},
		{"GET /api/v1/points/{id}/files", Viewer, s.files},
		{"GET /api/v1/points/{id}/download", Viewer, s.download},
		{"GET /api/v1/jobs", Viewer, s.jobs},
		{"POST /api/v1/jobs", Operator, s.submit},
		{"GET /api/v1/jobs/{id}", Viewer, s.job},
		{"POST /api/v1/jobs/{id}/cancel", Operator, s.cancel},
		{"GET /api/v1/repository", Viewer, s.repository},
		{"POST /api/v1/restore/plan", Operator, s.planRestore},
		{"POST /api/v1/points/{id}/ack", Operator, s.ack},
	}
}
