// Package progress holds the counters of long work (backup, restore). The
// work updates them; printers on a terminal, JSON status lines and later the
// API read them. Keeping events apart from printers is what lets the daemon
// reuse them.
package progress

import (
	"sync"
	"sync/atomic"
	"time"
)

// Counters are updated concurrently by the work and read by whoever shows
// progress.
//
// A backup may walk its unit more than once (a live pass, then a frozen
// one); each pass reports on its own: StartPass sets the done counters and
// the totals back to zero, so done never runs past a total that counted
// one pass only. CachedBytes and StoredBytes add up over the passes.
type Counters struct {
	Files       atomic.Int64 // files done in this pass, read or found unchanged
	Bytes       atomic.Int64 // bytes of those files
	CachedBytes atomic.Int64 // bytes found unchanged and not read again
	StoredBytes atomic.Int64 // bytes written to the repository (compressed, encrypted)
	TotalFiles  atomic.Int64 // estimate for this pass, 0 while unknown
	TotalBytes  atomic.Int64 // estimate for this pass, 0 while unknown
	Errors      atomic.Int64
	start       time.Time

	mu        sync.Mutex
	pass      int
	passStart time.Time
}

// New returns counters whose clock starts now.
func New() *Counters {
	now := time.Now()
	return &Counters{start: now, passStart: now}
}

// StartPass begins a new pass over the work: done and total start again
// from zero, and the rate is that of this pass.
func (c *Counters) StartPass() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pass++
	c.passStart = time.Now()
	c.Files.Store(0)
	c.Bytes.Store(0)
	c.TotalFiles.Store(0)
	c.TotalBytes.Store(0)
}

// Snapshot is a consistent-enough copy of the counters at one instant. It
// is the one progress type: the terminal printer, the daemon's queue and
// the API's jobs all show it.
type Snapshot struct {
	// Pass numbers the walks of the work from 1; 0 before the first.
	Pass        int           `json:"pass"`
	Files       int64         `json:"files_done"`
	Bytes       int64         `json:"bytes_done"`
	TotalFiles  int64         `json:"files_total"`
	TotalBytes  int64         `json:"bytes_total"`
	StoredBytes int64         `json:"bytes_stored"`
	Elapsed     time.Duration `json:"-"`
	Rate        float64       `json:"bytes_per_second"`
	ETA         time.Duration `json:"-"`
	PercentDone float64       `json:"percent_done"`
}

// Read returns the counters and what follows from them: rate, ETA, percent.
// A total is an estimate (the scan that makes it runs beside the work, and
// dumps and images are not in it): where done has passed it, the total
// read is done, so that progress never shows more than 100 %.
func (c *Counters) Read() Snapshot {
	c.mu.Lock()
	pass, passStart := c.pass, c.passStart
	s := Snapshot{
		Pass: pass, Files: c.Files.Load(), Bytes: c.Bytes.Load(),
		TotalFiles: c.TotalFiles.Load(), TotalBytes: c.TotalBytes.Load(),
		StoredBytes: c.StoredBytes.Load(), Elapsed: time.Since(c.start),
	}
	c.mu.Unlock()
	if s.TotalFiles > 0 {
		s.TotalFiles = max(s.TotalFiles, s.Files)
	}
	if s.TotalBytes > 0 {
		s.TotalBytes = max(s.TotalBytes, s.Bytes)
	}
	if secs := time.Since(passStart).Seconds(); secs > 0 {
		s.Rate = float64(s.Bytes) / secs
	}
	if s.TotalBytes > 0 {
		s.PercentDone = min(1, float64(s.Bytes)/float64(s.TotalBytes))
		if left := s.TotalBytes - s.Bytes; left > 0 && s.Rate > 0 {
			s.ETA = time.Duration(float64(left) / s.Rate * float64(time.Second))
		}
	}
	return s
}
