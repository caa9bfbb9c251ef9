package scheduler

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"
)

// History keeps job records in a JSON-lines file: a line per state change,
// appended and flushed to disk, so it survives a crash of the daemon. The
// newest line of a job wins; the file is rewritten when it grows past
// twice the records kept.
type History struct {
	mu    sync.Mutex
	path  string
	keep  int
	jobs  map[string]Job
	lines int
	f     *os.File
}

// OpenHistory reads the history at path (creating it). Jobs recorded as
// running — a daemon killed in the middle of them — are closed as failed.
func OpenHistory(path string, keep int) (*History, error) {
	h := &History{path: path, keep: max(keep, 10), jobs: map[string]Job{}}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("job history: %w", err)
	}
	if f, err := os.Open(path); err == nil {
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			var j Job
			if json.Unmarshal(sc.Bytes(), &j) == nil && j.ID != "" {
				h.jobs[j.ID] = j
				h.lines++
			}
		}
		f.Close()
	}
	now := time.Now()
	for id, j := range h.jobs {
		if !j.Done() {
			j.State, j.Error, j.Ended = Failed, "interrupted: the daemon stopped while it ran", &now
			h.jobs[id] = j
		}
	}
	if err := h.compact(); err != nil {
		return nil, err
	}
	return h, nil
}

// Record writes a job's current state.
func (h *History) Record(j Job) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.jobs[j.ID] = j
	b, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if _, err := h.f.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("job history: %w", err)
	}
	if err := h.f.Sync(); err != nil {
		return fmt.Errorf("job history: %w", err)
	}
	h.lines++
	if h.lines > 2*h.keep {
		return h.compactLocked()
	}
	return nil
}

// Get is one job's newest record.
func (h *History) Get(id string) (Job, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	j, ok := h.jobs[id]
	return j, ok
}

// All are the records, newest first.
func (h *History) All() []Job {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Job, 0, len(h.jobs))
	for _, j := range h.jobs {
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Queued.After(out[b].Queued) })
	return out
}

// Close closes the file.
func (h *History) Close() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.f == nil {
		return nil
	}
	return h.f.Close()
}

func (h *History) compact() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.compactLocked()
}

// compactLocked rewrites the file with the newest records only, through a
// temporary file renamed over it.
func (h *History) compactLocked() error {
	all := make([]Job, 0, len(h.jobs))
	for _, j := range h.jobs {
		all = append(all, j)
	}
	sort.Slice(all, func(a, b int) bool { return all[a].Queued.After(all[b].Queued) })
	if len(all) > h.keep {
		for _, j := range all[h.keep:] {
			delete(h.jobs, j.ID)
		}
		all = all[:h.keep]
	}
	tmp := h.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("job history: %w", err)
	}
	w := bufio.NewWriter(f)
	for i := len(all) - 1; i >= 0; i-- {
		b, _ := json.Marshal(all[i])
		w.Write(append(b, '\n'))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("job history: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("job history: %w", err)
	}
	f.Close()
	if err := os.Rename(tmp, h.path); err != nil {
		return fmt.Errorf("job history: %w", err)
	}
	if h.f != nil {
		h.f.Close()
	}
	h.f, err = os.OpenFile(h.path, os.O_APPEND|os.O_WRONLY, 0o600)
	h.lines = len(all)
	return err
}
