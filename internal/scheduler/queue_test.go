package scheduler

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func newQueue(t *testing.T, limit int) (*Queue, *History, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "jobs.jsonl")
	h, err := OpenHistory(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return NewQueue(limit, h, slog.New(slog.NewTextHandler(io.Discard, nil)), nil), h, path
}

func waitState(t *testing.T, q *Queue, id, state string) Job {
	t.Helper()
	for range 500 {
		if j, ok := q.Job(id); ok && j.State == state {
			return j
		}
		time.Sleep(5 * time.Millisecond)
	}
	j, _ := q.Job(id)
	t.Fatalf("job %s is %s, want %s", id, j.State, state)
	return j
}

func TestLimitAndUnitExclusion(t *testing.T) {
	q, _, _ := newQueue(t, 2)
	var now, peak atomic.Int32
	perUnit := sync.Map{}
	release := make(chan struct{})
	work := func(unit string) Func {
		return func(ctx context.Context, r *Run) error {
			if _, loaded := perUnit.LoadOrStore(unit, true); loaded {
				t.Errorf("two jobs on %s at once", unit)
			}
			n := now.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			<-release
			now.Add(-1)
			perUnit.Delete(unit)
			return nil
		}
	}
	var ids []string
	for _, u := range []string{"a", "a", "b", "c", "a"} {
		j, err := q.Submit("backup", u, "manual", work(u))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	waitState(t, q, ids[0], Running)
	waitState(t, q, ids[2], Running)
	if j, _ := q.Job(ids[1]); j.State != Queued {
		t.Fatalf("second job of unit a is %s while the first runs", j.State)
	}
	for i := 0; now.Load() < 2 && i < 500; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	close(release)
	for _, id := range ids {
		waitState(t, q, id, Succeeded)
	}
	if peak.Load() != 2 {
		t.Fatalf("peak concurrency %d, want 2", peak.Load())
	}
}

func TestCoalesceCancelAndFailure(t *testing.T) {
	q, _, _ := newQueue(t, 1)
	block := make(chan struct{})
	first, _ := q.Submit("backup", "x", "schedule", func(ctx context.Context, r *Run) error {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
		return nil
	})
	waitState(t, q, first.ID, Running)
	a, _ := q.Submit("backup", "y", "schedule", func(context.Context, *Run) error { return nil })
	b, _ := q.Submit("backup", "y", "schedule", func(context.Context, *Run) error { return nil })
	if a.ID != b.ID {
		t.Fatalf("a scheduled job was queued twice: %s, %s", a.ID, b.ID)
	}
	if err := q.Cancel(a.ID); err != nil {
		t.Fatal(err)
	}
	if j := waitState(t, q, a.ID, Cancelled); j.Started != nil {
		t.Fatal("a cancelled queued job started")
	}
	if err := q.Cancel(first.ID); err != nil {
		t.Fatal(err)
	}
	waitState(t, q, first.ID, Cancelled)
	bad, _ := q.Submit("check", "", "manual", func(ctx context.Context, r *Run) error {
		r.Log.Info("reading", "blobs", 3)
		r.Report("", 42, 0, nil)
		return errors.New("pack p123 is corrupt")
	})
	j := waitState(t, q, bad.ID, Failed)
	if j.Error != "pack p123 is corrupt" || j.Bytes != 42 || len(j.Log) != 1 {
		t.Fatalf("failed job: %+v", j)
	}
	if err := q.Cancel(bad.ID); !errors.Is(err, ErrEnded) {
		t.Fatalf("cancel of an ended job: %v", err)
	}
}

func TestHistorySurvivesAndClosesInterrupted(t *testing.T) {
	q, h, path := newQueue(t, 1)
	done, _ := q.Submit("backup", "a", "manual", func(context.Context, *Run) error { return nil })
	waitState(t, q, done.ID, Succeeded)
	hang := make(chan struct{})
	defer close(hang)
	running, _ := q.Submit("backup", "b", "manual", func(ctx context.Context, r *Run) error { <-hang; return nil })
	waitState(t, q, running.ID, Running)
	h.Close() // as a SIGKILL would leave it: the running record is the last

	h2, err := OpenHistory(path, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	if j, ok := h2.Get(done.ID); !ok || j.State != Succeeded {
		t.Fatalf("finished job after reopen: %+v %v", j, ok)
	}
	j, ok := h2.Get(running.ID)
	if !ok || j.State != Failed || j.Ended == nil || j.Error == "" {
		t.Fatalf("interrupted job after reopen: %+v", j)
	}
}

func TestHistoryCompacts(t *testing.T) {
	h, err := OpenHistory(filepath.Join(t.TempDir(), "h.jsonl"), 10)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	base := time.Now()
	for i := range 50 {
		if err := h.Record(Job{ID: string(rune('A' + i)), State: Succeeded, Queued: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	if all := h.All(); len(all) > 20 || all[0].ID != string(rune('A'+49)) {
		t.Fatalf("%d records kept, newest %s", len(all), all[0].ID)
	}
}

func TestShutdownCancelsRunningAfterGrace(t *testing.T) {
	q, _, _ := newQueue(t, 1)
	var cleaned atomic.Bool
	j, _ := q.Submit("backup", "a", "manual", func(ctx context.Context, r *Run) error {
		<-ctx.Done()
		cleaned.Store(true) // a backup thaws here
		return ctx.Err()
	})
	queued, _ := q.Submit("backup", "b", "manual", func(context.Context, *Run) error { return nil })
	waitState(t, q, j.ID, Running)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	q.Shutdown(ctx)
	if !cleaned.Load() {
		t.Fatal("the running job did not clean up before Shutdown returned")
	}
	if jj, _ := q.Job(queued.ID); jj.State != Cancelled {
		t.Fatalf("queued job: %s", jj.State)
	}
	if _, err := q.Submit("backup", "c", "manual", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("submit after shutdown: %v", err)
	}
}

// TestDrillBesideBackup: a drill of a unit runs beside the unit's backup,
// never beside another drill of it.
func TestDrillBesideBackup(t *testing.T) {
	q, _, _ := newQueue(t, 3)
	release := make(chan struct{})
	block := func(context.Context, *Run) error { <-release; return nil }
	b, _ := q.Submit("backup", "project/shop", "manual", block)
	d1, _ := q.Submit("drill", "project/shop", "manual", block)
	d2, _ := q.Submit("drill", "project/shop", "manual", block)
	waitState(t, q, b.ID, Running)
	waitState(t, q, d1.ID, Running)
	time.Sleep(20 * time.Millisecond)
	if j, _ := q.Job(d2.ID); j.State != Queued {
		t.Fatalf("a second drill of the unit is %s while the first runs", j.State)
	}
	close(release)
	for _, id := range []string{b.ID, d1.ID, d2.ID} {
		waitState(t, q, id, Succeeded)
	}
}
