package scheduler

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/progress"
)

// Job states.
const (
	Queued    = "queued"
	Running   = "running"
	Succeeded = "succeeded"
	Failed    = "failed"
	Cancelled = "cancelled"
)

// Job is one job's record: what the API lists and the history keeps.
type Job struct {
	ID         string     `json:"id"`
	Kind       string     `json:"kind"`
	Unit       string     `json:"unit,omitempty"`
	Trigger    string     `json:"trigger"`
	State      string     `json:"state"`
	Queued     time.Time  `json:"queued"`
	Started    *time.Time `json:"started,omitempty"`
	Ended      *time.Time `json:"ended,omitempty"`
	Bytes      int64      `json:"bytes"`
	DowntimeMS int64      `json:"downtime_ms"`
	Point      string     `json:"point,omitempty"`
	Error      string     `json:"error,omitempty"`
	Result     any        `json:"result,omitempty"`
	Log        []string   `json:"log,omitempty"`
	// Waiting says what a running job waits for before it can do its
	// work (another job's lock of its unit); "" when it does not wait.
	Waiting string `json:"waiting,omitempty"`
}

// Done reports whether the job has ended.
func (j Job) Done() bool { return j.State == Succeeded || j.State == Failed || j.State == Cancelled }

type entry struct {
	job      Job
	fn       Func
	ctx      context.Context
	cancel   context.CancelFunc
	progress *progress.Counters
	log      *ring
	writers  []*lineWriter // flushed when the job ends: a last line may lack its newline
	done     chan struct{}
}

// Errors of Submit and Cancel.
var (
	ErrClosed  = errors.New("the daemon is stopping: no new jobs")
	ErrNoJob   = errors.New("no such job")
	ErrEnded   = errors.New("the job has ended")
	ErrUnknown = errors.New("unknown job kind")
)

// Queue runs jobs, at most limit at once, never two on one unit (or two
// repository-wide jobs of one kind), oldest first.
type Queue struct {
	mu      sync.Mutex
	limit   int
	base    context.Context
	stop    context.CancelFunc
	entries map[string]*entry
	order   []*entry // queued, oldest first
	busy    map[string]bool
	running int
	closed  bool
	history *History
	subs    []*subscriber
	log     *slog.Logger
	seq     atomic.Int64
	wg      sync.WaitGroup
}

// NewQueue makes a queue that keeps its finished jobs in history and calls
// notify (if set) on every state change, as Subscribe does.
func NewQueue(limit int, history *History, log *slog.Logger, notify func(Job)) *Queue {
	// The queue is the daemon's job runner: its jobs' contexts descend from
	// this one, cancelled when Shutdown's grace ends.
	ctx, stop := context.WithCancel(context.Background())
	q := &Queue{limit: max(1, limit), base: ctx, stop: stop, entries: map[string]*entry{}, busy: map[string]bool{}, history: history, log: log}
	if notify != nil {
		q.subs = append(q.subs, newSubscriber(notify))
	}
	return q
}

func lockKey(kind, unit string) string {
	switch {
	case unit == "":
		return "repository:" + kind
	case kind == "drill":
		// A drill restores a copy of the unit from the repository: it
		// never waits for, nor holds up, the unit's own jobs; two drills
		// of one unit never run at once.
		return "drill:" + unit
	}
	return "unit:" + unit
}

// Submit queues a job. A scheduled job for a unit that already has a job of
// the same kind waiting is not queued twice: the waiting one is returned.
func (q *Queue) Submit(kind, unit, trigger string, fn Func) (Job, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return Job{}, ErrClosed
	}
	if trigger == "schedule" || trigger == "missed" {
		for _, e := range q.order {
			if e.job.Kind == kind && e.job.Unit == unit {
				return e.job, nil
			}
		}
	}
	now := time.Now()
	// Sortable by time as strings (the sequence is zero-padded, so job 10
	// sorts after job 9 of one second), and unique across restarts too.
	var rnd [3]byte
	_, _ = rand.Read(rnd[:])
	id := fmt.Sprintf("%s-%06d%s", now.UTC().Format("20060102T150405"), q.seq.Add(1)%1e6, hex.EncodeToString(rnd[:]))
	ctx, cancel := context.WithCancel(q.base)
	e := &entry{job: Job{ID: id, Kind: kind, Unit: unit, Trigger: trigger, State: Queued, Queued: now}, fn: fn, ctx: ctx, cancel: cancel, log: newRing(200), done: make(chan struct{})}
	q.entries[id] = e
	q.order = append(q.order, e)
	q.changed(e)
	q.dispatch()
	return e.job, nil
}

// dispatch starts what may start. Callers hold mu.
func (q *Queue) dispatch() {
	for i := 0; i < len(q.order) && q.running < q.limit; {
		e := q.order[i]
		key := lockKey(e.job.Kind, e.job.Unit)
		if q.busy[key] {
			i++
			continue
		}
		q.order = append(q.order[:i], q.order[i+1:]...)
		q.busy[key] = true
		q.running++
		now := time.Now()
		e.job.State, e.job.Started = Running, &now
		q.changed(e)
		q.wg.Add(1)
		go q.run(e, key)
	}
}

func (q *Queue) run(e *entry, key string) {
	defer q.wg.Done()
	r := &Run{q: q, e: e, Log: slog.New(&teeHandler{next: q.log.Handler(), ring: e.log}).With("job", e.job.ID)}
	err := func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = fmt.Errorf("job panicked: %v", p)
			}
		}()
		return e.fn(e.ctx, r)
	}()
	q.mu.Lock()
	now := time.Now()
	e.job.Ended, e.job.Waiting = &now, ""
	switch {
	case err == nil:
		e.job.State = Succeeded
	case e.ctx.Err() != nil:
		e.job.State, e.job.Error = Cancelled, err.Error()
	default:
		e.job.State, e.job.Error = Failed, err.Error()
	}
	for _, w := range e.writers {
		w.flush()
	}
	e.job.Log = e.log.lines()
	e.progress = nil
	delete(q.busy, key)
	q.running--
	q.changed(e)
	delete(q.entries, e.job.ID)
	close(e.done)
	e.cancel()
	q.dispatch()
	q.mu.Unlock()
}

// changed records and announces a state change. Callers hold mu.
func (q *Queue) changed(e *entry) {
	if q.history != nil && e.job.State != Queued {
		if err := q.history.Record(e.job); err != nil {
			q.log.Warn("job history not written", "job", e.job.ID, "err", err)
		}
	}
	for _, s := range q.subs {
		s.push(e.job)
	}
}

// Cancel cancels a queued or running job.
func (q *Queue) Cancel(id string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	e, ok := q.entries[id]
	if !ok {
		if q.history != nil {
			if _, ok := q.history.Get(id); ok {
				return ErrEnded
			}
		}
		return ErrNoJob
	}
	if e.job.State == Queued {
		for i, o := range q.order {
			if o == e {
				q.order = append(q.order[:i], q.order[i+1:]...)
				break
			}
		}
		now := time.Now()
		e.job.State, e.job.Ended, e.job.Error = Cancelled, &now, "cancelled before it started"
		q.changed(e)
		delete(q.entries, id)
		close(e.done)
		e.cancel()
		return nil
	}
	e.cancel()
	return nil
}

// Wait blocks until the job ends, or ctx does.
func (q *Queue) Wait(ctx context.Context, id string) (Job, error) {
	q.mu.Lock()
	e, ok := q.entries[id]
	q.mu.Unlock()
	if ok {
		select {
		case <-e.done:
		case <-ctx.Done():
			return Job{}, ctx.Err()
		}
	}
	j, ok := q.Job(id)
	if !ok {
		return Job{}, ErrNoJob
	}
	return j, nil
}

// Job is one job, live or from history.
func (q *Queue) Job(id string) (Job, bool) {
	q.mu.Lock()
	e, ok := q.entries[id]
	if ok {
		j := q.snapshot(e)
		q.mu.Unlock()
		return j, true
	}
	q.mu.Unlock()
	if q.history == nil {
		return Job{}, false
	}
	return q.history.Get(id)
}

func (q *Queue) snapshot(e *entry) Job {
	j := e.job
	j.Log = e.log.lines()
	return j
}

// Progress is a running job's progress, if it reports any.
func (q *Queue) Progress(id string) (progress.Snapshot, bool) {
	q.mu.Lock()
	e, ok := q.entries[id]
	var c *progress.Counters
	if ok {
		c = e.progress
	}
	q.mu.Unlock()
	if c == nil {
		return progress.Snapshot{}, false
	}
	return c.Read(), true
}

// Active lists the queued and running jobs, without their logs.
func (q *Queue) Active() []Job {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []Job
	for _, e := range q.entries {
		j := q.snapshot(e)
		j.Log = nil
		out = append(out, j)
	}
	return out
}

// Jobs lists live jobs then history, newest first.
func (q *Queue) Jobs() []Job {
	out := q.Active()
	if q.history != nil {
		for _, j := range q.history.All() {
			if !j.Done() {
				continue // live: listed above
			}
			j.Log = nil
			out = append(out, j)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return out[a].Queued.After(out[b].Queued) })
	return out
}

// Counts are the queued and running jobs, for metrics.
func (q *Queue) Counts() (queued, running int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.order), q.running
}

// Shutdown takes no more jobs, cancels the queued ones, and waits for the
// running ones until ctx ends, then cancels them and waits for them to
// clean up (thaw what they froze).
func (q *Queue) Shutdown(ctx context.Context) {
	q.mu.Lock()
	q.closed = true
	for _, e := range append([]*entry(nil), q.order...) {
		now := time.Now()
		e.job.State, e.job.Ended, e.job.Error = Cancelled, &now, "the daemon stopped before it started"
		q.changed(e)
		delete(q.entries, e.job.ID)
		close(e.done)
		e.cancel()
	}
	q.order = nil
	q.mu.Unlock()
	done := make(chan struct{})
	go func() { q.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		q.stop()
		<-done
	}
	q.closeSubscribers(ctx)
}
