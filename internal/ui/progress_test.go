package ui

import (
	"strings"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/progress"
)

// TestProgressLineSecondPass: a frozen pass after a live one shows its own
// counts, never more done than its total.
func TestProgressLineSecondPass(t *testing.T) {
	c := progress.New()
	c.StartPass()
	c.TotalFiles.Store(1507)
	c.Files.Store(1507)
	c.StartPass()
	c.TotalFiles.Store(1507)
	c.TotalBytes.Store(345 << 20)
	c.Files.Add(1510) // the scan leaves the sidecars out
	c.Bytes.Add(345 << 20)
	p := &Progress{label: "volume/data", c: c}
	line := p.lineLocked()
	for _, want := range []string{"pass 2", "100%", "1510/1510 files", "345.0 MiB/345.0 MiB"} {
		if !strings.Contains(line, want) {
			t.Errorf("line %q lacks %q", line, want)
		}
	}
}

func TestBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"}, {5 << 20, "5.0 MiB"}, {3 << 30, "3.0 GiB"}} {
		if got := Bytes(tc.n); got != tc.want {
			t.Errorf("Bytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestDuration(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{0, "0:00"}, {61 * time.Second, "1:01"}, {3725 * time.Second, "1:02:05"}, {1400 * time.Millisecond, "0:01"}} {
		if got := Duration(tc.d); got != tc.want {
			t.Errorf("Duration(%v) = %q, want %q", tc.d, got, tc.want)
		}
	}
}
