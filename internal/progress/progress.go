// Package progress holds the counters of long work (backup, restore). The
// work updates them; printers on a terminal, JSON status lines and later the
// API read them. Keeping events apart from printers is what lets the daemon
// reuse them.
package progress

import (
	"sync/atomic"
	"time"
)

// Counters are updated concurrently by the work and read by whoever shows
// progress.
type Counters struct {
	Files       atomic.Int64 // files done, read or found unchanged
	Bytes       atomic.Int64 // bytes of those files
	CachedBytes atomic.Int64 // bytes found unchanged and not read again
	StoredBytes atomic.Int64 // bytes written to the repository (compressed, encrypted)
	TotalFiles  atomic.Int64 // estimate, 0 while unknown
	TotalBytes  atomic.Int64 // estimate, 0 while unknown
	Errors      atomic.Int64
	start       time.Time
}

// New returns counters whose clock starts now.
func New() *Counters { return &Counters{start: time.Now()} }

// Snapshot is a consistent-enough copy of the counters at one instant. It
// is the one progress type: the terminal printer, the daemon's queue and
// the API's jobs all show it.
type Snapshot struct {
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
func (c *Counters) Read() Snapshot {
	s := Snapshot{
		Files: c.Files.Load(), Bytes: c.Bytes.Load(),
		TotalFiles: c.TotalFiles.Load(), TotalBytes: c.TotalBytes.Load(),
		StoredBytes: c.StoredBytes.Load(), Elapsed: time.Since(c.start),
	}
	if secs := s.Elapsed.Seconds(); secs > 0 {
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
