package scheduler

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/lifeboat-backup/lifeboat/internal/progress"
)

// Run is a running job's handle on its own record.
type Run struct {
	q   *Queue
	e   *entry
	Log *slog.Logger // also written to the job's log
}

// SetProgress registers the counters of the job's work while it runs.
func (r *Run) SetProgress(c *progress.Counters) { r.q.mu.Lock(); r.e.progress = c; r.q.mu.Unlock() }

// ID is the job's ID.
func (r *Run) ID() string { return r.e.job.ID }

// SetWaiting records what the job waits for, "" once it no longer waits,
// and announces the change as a state change is.
func (r *Run) SetWaiting(what string) {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	if r.e.job.Waiting == what {
		return
	}
	r.e.job.Waiting = what
	r.q.changed(r.e)
}

// Writer is the job's log as an io.Writer, for output that comes as text
// (a dump or hook command's stderr): each line becomes a log line.
func (r *Run) Writer() io.Writer {
	w := &lineWriter{ring: r.e.log}
	r.q.mu.Lock()
	r.e.writers = append(r.e.writers, w)
	r.q.mu.Unlock()
	return w
}

// Report records what the job produced.
func (r *Run) Report(point string, bytes, downtimeMS int64, result any) {
	r.q.mu.Lock()
	defer r.q.mu.Unlock()
	r.e.job.Point, r.e.job.Bytes, r.e.job.DowntimeMS, r.e.job.Result = point, bytes, downtimeMS, result
}

// Func is a job's work. Its error fails the job; a cancelled context
// cancels it.
type Func func(ctx context.Context, r *Run) error

// lineWriter splits what is written into the ring's lines; a line longer
// than maxLine is cut there, so one endless line cannot grow without bound.
type lineWriter struct {
	mu   sync.Mutex
	ring *ring
	buf  []byte
}

const maxLine = 4096

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, b := range p {
		if b == '\n' || len(w.buf) == maxLine {
			w.ring.add(string(w.buf))
			w.buf = w.buf[:0]
			if b == '\n' {
				continue
			}
		}
		w.buf = append(w.buf, b)
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.ring.add(string(w.buf))
		w.buf = w.buf[:0]
	}
}

// ring keeps a job's last log lines.
type ring struct {
	mu  sync.Mutex
	max int
	buf []string
}

func newRing(n int) *ring { return &ring{max: n} }

func (r *ring) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, s)
	if len(r.buf) > r.max {
		r.buf = r.buf[len(r.buf)-r.max:]
	}
}

func (r *ring) lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.buf...)
}

// teeHandler writes records to the job's log as well as to the daemon's.
type teeHandler struct {
	next  slog.Handler
	ring  *ring
	attrs []slog.Attr
}

func (h *teeHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.next.Enabled(ctx, l)
}

func (h *teeHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelInfo {
		line := r.Time.Format("15:04:05") + " " + r.Level.String() + " " + r.Message
		add := func(a slog.Attr) bool {
			if a.Key != "job" {
				line += " " + a.Key + "=" + a.Value.String()
			}
			return true
		}
		for _, a := range h.attrs {
			add(a)
		}
		r.Attrs(add)
		h.ring.add(line)
	}
	if h.next.Enabled(ctx, r.Level) {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *teeHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &teeHandler{next: h.next.WithAttrs(as), ring: h.ring, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *teeHandler) WithGroup(name string) slog.Handler {
	return &teeHandler{next: h.next.WithGroup(name), ring: h.ring, attrs: h.attrs}
}
