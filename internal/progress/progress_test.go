package progress

import (
	"sync"
	"testing"
)

// TestPassesNeverPassTheirTotals drives two passes as a paused backup does
// (the scan's totals arrive beside the work, and the work counts files the
// scan does not: dumps, sidecars) and reads the counters all along.
func TestPassesNeverPassTheirTotals(t *testing.T) {
	c := New()
	var (
		wg    sync.WaitGroup
		stop  = make(chan struct{})
		mu    sync.Mutex
		seen  []Snapshot
		reads int
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			s := c.Read()
			mu.Lock()
			reads++
			if s.Files > s.TotalFiles && s.TotalFiles > 0 || s.Bytes > s.TotalBytes && s.TotalBytes > 0 || s.PercentDone > 1 {
				seen = append(seen, s)
			}
			mu.Unlock()
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	last := make([]Snapshot, 0, 2)
	for pass, files := range []int64{1507, 40} {
		c.StartPass()
		if s := c.Read(); s.Pass != pass+1 || s.Files != 0 || s.TotalFiles != 0 {
			t.Fatalf("pass %d starts at %+v, want pass %d and nothing done", pass+1, s, pass+1)
		}
		for i := int64(1); i <= files+10; i++ {
			if i == files/2 {
				// The scan's estimate, late and short of what the
				// pass counts.
				c.TotalFiles.Store(files)
				c.TotalBytes.Store(files * 1000)
			}
			c.Files.Add(1)
			c.Bytes.Add(1000)
			c.CachedBytes.Add(1000)
		}
		last = append(last, c.Read())
	}
	close(stop)
	wg.Wait()
	if len(seen) > 0 {
		t.Fatalf("%d of %d reads passed their totals, first %+v", len(seen), reads, seen[0])
	}
	for i, s := range last {
		if s.Files != s.TotalFiles || s.PercentDone != 1 {
			t.Errorf("pass %d ends at %d/%d files, %.2f done; want all of its own files and 100 %%", i+1, s.Files, s.TotalFiles, s.PercentDone)
		}
	}
	if last[1].Files != 50 {
		t.Errorf("second pass counts %d files, want its own 50", last[1].Files)
	}
	if got := c.CachedBytes.Load(); got != (1517+50)*1000 {
		t.Errorf("cached bytes %d, want the sum over both passes", got)
	}
}
