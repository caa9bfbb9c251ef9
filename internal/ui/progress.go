// Package ui renders long work for people: a progress line on a terminal,
// and human sizes and durations. It only reads progress counters; the work
// never knows it is being shown.
package ui

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/lifeboat-backup/lifeboat/internal/progress"
)

// Progress draws one status line for the current piece of work.
type Progress struct {
	w        io.Writer
	terminal bool
	mu       sync.Mutex
	label    string
	c        *progress.Counters
	stop     chan struct{}
	done     chan struct{}
	usr1     chan os.Signal
}

// NewProgress returns a printer on w. It draws only when w is a terminal
// and enabled is true; otherwise it stays quiet but for a status line on
// SIGUSR1, as restic does.
func NewProgress(w io.Writer, enabled bool) *Progress {
	p := &Progress{w: w, terminal: enabled && isTerminal(w), stop: make(chan struct{}), done: make(chan struct{})}
	p.usr1 = make(chan os.Signal, 1)
	signal.Notify(p.usr1, syscall.SIGUSR1)
	go p.loop()
	return p
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// Track shows c under label from now on.
func (p *Progress) Track(label string, c *progress.Counters) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	p.label, p.c = label, c
	p.drawLocked()
}

// Done clears the line and stops drawing.
func (p *Progress) Done() {
	close(p.stop)
	<-p.done
	signal.Stop(p.usr1)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
}

// Println prints a line of output without tearing the status line.
func (p *Progress) Println(w io.Writer, s string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clearLocked()
	fmt.Fprintln(w, s)
}

func (p *Progress) loop() {
	defer close(p.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-p.usr1:
			p.mu.Lock()
			if p.c != nil {
				fmt.Fprintln(p.w, p.lineLocked())
			}
			p.mu.Unlock()
		case <-t.C:
			p.mu.Lock()
			p.drawLocked()
			p.mu.Unlock()
		}
	}
}

func (p *Progress) drawLocked() {
	if !p.terminal || p.c == nil {
		return
	}
	line := p.lineLocked()
	if width, _, err := term.GetSize(int(p.w.(*os.File).Fd())); err == nil && width > 1 && len(line) >= width {
		line = line[:width-1]
	}
	fmt.Fprintf(p.w, "\r\x1b[K%s", line)
}

func (p *Progress) clearLocked() {
	if p.terminal && p.c != nil {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

func (p *Progress) lineLocked() string {
	s := p.c.Read()
	line := fmt.Sprintf("%s  [%s]", p.label, Duration(s.Elapsed))
	if s.Pass > 1 {
		// Counts start again with each pass: say so, or the files
		// done seem to go backwards.
		line += fmt.Sprintf("  pass %d", s.Pass)
	}
	if s.TotalBytes > 0 {
		line += fmt.Sprintf("  %3.0f%%", s.PercentDone*100)
	}
	if s.TotalFiles > 0 {
		line += fmt.Sprintf("  %d/%d files", s.Files, s.TotalFiles)
	} else {
		line += fmt.Sprintf("  %d files", s.Files)
	}
	if s.TotalBytes > 0 {
		line += fmt.Sprintf("  %s/%s", Bytes(s.Bytes), Bytes(s.TotalBytes))
	} else {
		line += "  " + Bytes(s.Bytes)
	}
	line += fmt.Sprintf("  %s/s", Bytes(int64(s.Rate)))
	if s.ETA > 0 {
		line += "  ETA " + Duration(s.ETA)
	}
	return line
}

// Bytes formats n in binary units.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Duration formats d as h:mm:ss or m:ss.
func Duration(d time.Duration) string {
	s := int64(d.Round(time.Second).Seconds())
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}
