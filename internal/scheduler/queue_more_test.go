package scheduler

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/progress"
)

func TestSubscribersSeeChangesInOrder(t *testing.T) {
	q, _, _ := newQueue(t, 3)
	var mu sync.Mutex
	seen := map[string][]string{}
	total := 0
	unsubscribe := q.Subscribe(func(j Job) {
		time.Sleep(time.Millisecond) // a slow listener must not reorder or stall anything
		mu.Lock()
		seen[j.ID] = append(seen[j.ID], j.State)
		total++
		mu.Unlock()
	})
	defer unsubscribe()
	var ids []string
	for i := range 12 {
		state := error(nil)
		if i%4 == 0 {
			state = fmt.Errorf("job %d fails", i)
		}
		j, err := q.Submit("backup", fmt.Sprintf("u%d", i%5), "manual", func(context.Context, *Run) error { return state })
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	for _, id := range ids {
		if _, err := q.Wait(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
	q.Shutdown(t.Context()) // waits for the listeners to drain
	mu.Lock()
	defer mu.Unlock()
	if total != 3*len(ids) {
		t.Fatalf("%d changes delivered, want %d: %v", total, 3*len(ids), seen)
	}
	for i, id := range ids {
		last := Succeeded
		if i%4 == 0 {
			last = Failed
		}
		if got, want := seen[id], []string{Queued, Running, last}; !slices.Equal(got, want) {
			t.Errorf("job %s: changes %v, want %v", id, got, want)
		}
	}
}

func TestIDsSortInSubmitOrder(t *testing.T) {
	q, _, _ := newQueue(t, 1)
	var ids []string
	for i := range 25 { // more than nine in one second: the sequence must be padded
		j, err := q.Submit("check", fmt.Sprint(i), "manual", func(context.Context, *Run) error { return nil })
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	if !slices.IsSorted(ids) {
		t.Fatalf("IDs do not sort in submit order: %v", ids)
	}
	q.Shutdown(t.Context())
}

func TestProgressAndBoundedLog(t *testing.T) {
	q, _, _ := newQueue(t, 1)
	step := make(chan struct{})
	j, _ := q.Submit("backup", "a", "manual", func(ctx context.Context, r *Run) error {
		c := progress.New()
		c.Files.Store(3)
		c.TotalFiles.Store(10)
		c.Bytes.Store(300)
		c.TotalBytes.Store(1000)
		r.SetProgress(c)
		w := r.Writer()
		for i := range 300 {
			fmt.Fprintf(w, "line %d\n", i)
		}
		fmt.Fprint(w, "no newline at the end")
		r.Log.Info("unit frozen", "downtime_ms", 12)
		<-step
		return nil
	})
	waitState(t, q, j.ID, Running)
	var p progress.Snapshot
	for range 500 {
		var ok bool
		if p, ok = q.Progress(j.ID); ok {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if p.Files != 3 || p.TotalFiles != 10 || p.Bytes != 300 || p.TotalBytes != 1000 {
		t.Fatalf("progress %+v", p)
	}
	close(step)
	done := waitState(t, q, j.ID, Succeeded)
	if _, ok := q.Progress(j.ID); ok {
		t.Error("an ended job still reports progress")
	}
	if len(done.Log) != 200 {
		t.Fatalf("log holds %d lines, want the last 200", len(done.Log))
	}
	joined := strings.Join(done.Log, "\n")
	if strings.Contains(joined, "line 100\n") || !strings.Contains(joined, "line 299") ||
		!strings.Contains(joined, "no newline at the end") || !strings.Contains(joined, "unit frozen downtime_ms=12") {
		t.Fatalf("log is not the job's last lines:\n%s", joined)
	}
}

func TestShutdownLetsRunningJobsFinishInGrace(t *testing.T) {
	q, h, _ := newQueue(t, 2)
	release := make(chan struct{})
	j, _ := q.Submit("backup", "a", "manual", func(ctx context.Context, r *Run) error {
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	})
	waitState(t, q, j.ID, Running)
	time.AfterFunc(20*time.Millisecond, func() { close(release) })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	q.Shutdown(ctx)
	if got, _ := h.Get(j.ID); got.State != Succeeded {
		t.Fatalf("a job that finished within the grace is %s: %s", got.State, got.Error)
	}
}

func TestHistoryReopensAfterCompactionAndTornLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "jobs.jsonl")
	h, err := OpenHistory(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	q := NewQueue(1, h, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	var last string
	for range 60 { // two records a job: compacted to 10 jobs past 20 lines, several times
		j, _ := q.Submit("check", "", "manual", func(context.Context, *Run) error { return nil })
		waitState(t, q, j.ID, Succeeded)
		last = j.ID
	}
	q.Shutdown(t.Context())
	h.Close()
	b, _ := os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n > 20 {
		t.Fatalf("the file holds %d lines, more than twice the 10 records kept", n)
	}
	// A daemon killed in the middle of a write leaves half a line.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"id":"20261125T000000-000001abcdef","kind":"backup","state":"runn`)
	f.Close()

	h2, err := OpenHistory(path, 10)
	if err != nil {
		t.Fatal(err)
	}
	defer h2.Close()
	all := h2.All()
	if len(all) != 10 || all[0].ID != last || all[0].State != Succeeded {
		t.Fatalf("after reopen: %d records, newest %+v; want 10, newest %s", len(all), all[0], last)
	}
	b, _ = os.ReadFile(path)
	if n := strings.Count(string(b), "\n"); n != 10 {
		t.Fatalf("the file was not rewritten clean at open: %d lines", n)
	}
}
