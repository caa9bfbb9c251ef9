package engine

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
)

// TestOpenFIFORefusesWhatIsNoFIFO: the host's end of a dump FIFO opens
// nothing but a FIFO in one of the wrapper's directories, and a wait for
// a writer that never comes ends when told to.
func TestOpenFIFORefusesWhatIsNoFIFO(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "host-secret")
	if err := os.WriteFile(secret, []byte("host data"), 0o600); err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(tmp, "regular"), []byte("x"), 0o600))
	must(os.Symlink(secret, filepath.Join(tmp, "link")))
	must(syscall.Mkfifo(filepath.Join(tmp, "fifo"), 0o600))
	must(os.Symlink(tmp, filepath.Join(dir, "shm")))
	root, err := beneath.Open(dir)
	must(err)
	defer root.Close()

	for _, c := range []struct{ dir, name string }{
		{"/tmp", "regular"}, {"/tmp", "link"}, {"/tmp", "missing"}, {"/etc", "fifo"}, {"/tmp/../tmp", "fifo"},
	} {
		if f, err := openFIFO(root, c.dir, c.name); err == nil {
			f.remove()
			t.Errorf("%s/%s opened as a dump FIFO", c.dir, c.name)
		}
	}
	f, err := openFIFO(root, "/tmp", "fifo")
	must(err)
	done := make(chan struct{})
	time.AfterFunc(100*time.Millisecond, func() { close(done) })
	start := time.Now()
	r, err := f.open(done)
	must(err)
	if n, err := r.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Errorf("a FIFO nobody wrote read %d bytes, %v", n, err)
	}
	r.Close()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the wait for a writer took %v after it was ended", took)
	}
	f.remove()
	if _, err := os.Lstat(filepath.Join(tmp, "fifo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the FIFO is left: %v", err)
	}
}

// TestDumpThroughFIFO: a dump read from a container of a local engine
// comes through a FIFO, whole, with the command's failure reported; a
// container that has nowhere to make one streams it; a cancelled dump
// leaves no process and no FIFO behind.
func TestDumpThroughFIFO(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	removeAfter(t, d, "container", p+"db", p+"ro", p+"ln")
	d.Docker(t, "run", "-d", "--name", p+"db", busybox, "sleep", "600")
	d.Docker(t, "run", "-d", "--name", p+"ro", "--read-only", "--user", "1000:1000", "--ipc", "none", busybox, "sleep", "600")
	d.Docker(t, "run", "-d", "--name", p+"ln", "--ipc", "none", busybox, "sh", "-c", "rmdir /dev/shm; ln -s /tmp /dev/shm && sleep 600")
	const size = 3_000_000
	want := bytes.Repeat([]byte("lifeboat\n"), size/9+1)[:size]
	dump := ExecSpec{Cmd: []string{"sh", "-c", "yes lifeboat | head -c 3000000; echo note >&2"}}

	for _, ct := range []struct {
		name string
		fifo bool
	}{{p + "db", true}, {p + "ro", false}} {
		out := c.ExecOutput(ctx, ct.name, dump)
		got, err := io.ReadAll(out)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: read %d bytes (want %d, equal %v): %v", ct.name, len(got), size, bytes.Equal(got, want), err)
		}
		if via := out.(*execReader).file != nil; via != ct.fifo {
			t.Errorf("%s: through a FIFO %v, want %v", ct.name, via, ct.fifo)
		}
		out.Close()
	}

	// A dump small enough to be written and ended before the host's
	// open returns is read whole all the same.
	for i := range 30 {
		out := c.ExecOutput(ctx, p+"db", ExecSpec{Cmd: []string{"echo", "small"}})
		if got, err := io.ReadAll(out); err != nil || string(got) != "small\n" {
			t.Fatalf("small dump %d read %q: %v", i, got, err)
		}
		out.Close()
	}

	// A FIFO the host cannot open (here: made through a symlink, which
	// it does not follow) gives the exec stream instead.
	out := c.ExecOutput(ctx, p+"ln", dump)
	if got, err := io.ReadAll(out); err != nil || !bytes.Equal(got, want) {
		t.Errorf("past a symlinked /dev/shm: read %d bytes: %v", len(got), err)
	}
	if out.(*execReader).file != nil {
		t.Error("a FIFO reached through a symlink was read")
	}
	out.Close()

	out = c.ExecOutput(ctx, p+"db", ExecSpec{Cmd: []string{"sh", "-c", "echo partial; echo boom >&2; exit 3"}})
	if _, err := io.ReadAll(out); err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "exited 3") {
		t.Errorf("a failed dump read as: %v", err)
	}
	out.Close()

	cctx, cancel := context.WithCancel(ctx)
	out = c.ExecOutput(cctx, p+"db", ExecSpec{Cmd: []string{"sh", "-c", "yes | head -c 1000000; sleep 600; echo never"}})
	if _, err := io.ReadFull(out, make([]byte, 1000000)); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	if _, err := io.ReadAll(out); err == nil || !strings.Contains(err.Error(), "cancel") {
		t.Errorf("a cancelled dump read as: %v", err)
	}
	out.Close()
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the cancelled dump ended after %v", took)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ps := d.Docker(t, "exec", p+"db", "ps", "-o", "args")
		left := d.Docker(t, "exec", p+"db", "sh", "-c", "ls -a /dev/shm /tmp | grep lifeboat || true")
		if !strings.Contains(ps, "sleep 600;") && !strings.Contains(ps, "head -c") && left == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a cancelled dump the container still has:\n%s\n%s", ps, left)
		}
	}
}

// TestStaleDumpFIFOReleased: a dump whose lifeboat was killed between the
// wrapper's marker and the host's open waits in the container for a
// reader; the next dump from that container frees it, and its wrapper
// removes the FIFO and ends.
func TestStaleDumpFIFOReleased(t *testing.T) {
	c, d := testClient(t)
	ctx := ctxT(t)
	p := names(t)
	removeAfter(t, d, "container", p+"db")
	d.Docker(t, "run", "-d", "--name", p+"db", busybox, "sleep", "600")
	defer func(old time.Duration) { staleAfter = old }(staleAfter)
	// Fresh for the first dump, however slow the engine's execs are
	// (CI's took over a second once, and a one-second rule called the
	// FIFO stale); stale for the second, a second later.
	staleAfter = 30 * time.Second
	name := fifoName()
	// As the engine runs it for lifeboat, with nobody to open the FIFO,
	// and writing on as a dump does. (A writer that wrote once and then
	// slept could slip its one write in while the release holds the FIFO
	// open, and wait on: CI saw that with "echo data; sleep 600".)
	d.Docker(t, "exec", "-d", p+"db", "sh", "-c", fifoWrap, "sh", name, "sh", "-c", "while :; do echo data; sleep 0.2; done")
	waitFor := func(what string, ok func(ps, shm string) bool) {
		t.Helper()
		var ps, shm string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			ps = d.Docker(t, "exec", p+"db", "ps", "-o", "args")
			shm = d.Docker(t, "exec", p+"db", "ls", "-a", "/dev/shm")
			if ok(ps, shm) {
				return
			}
		}
		t.Fatalf("%s; processes:\n%s\n/dev/shm: %s", what, ps, shm)
	}
	waitFor("the wrapper made no FIFO", func(ps, shm string) bool { return strings.Contains(shm, name) })
	// A fresh one is not stale: a dump now leaves it waiting.
	out := c.ExecOutput(ctx, p+"db", ExecSpec{Cmd: []string{"echo", "fresh"}})
	if got, err := io.ReadAll(out); err != nil || string(got) != "fresh\n" {
		t.Fatalf("dump read %q: %v", got, err)
	}
	out.Close()
	if shm := d.Docker(t, "exec", p+"db", "ls", "-a", "/dev/shm"); !strings.Contains(shm, name) {
		t.Fatal("a FIFO younger than staleAfter was released")
	}
	staleAfter = time.Second
	time.Sleep(staleAfter + 200*time.Millisecond)
	out = c.ExecOutput(ctx, p+"db", ExecSpec{Cmd: []string{"echo", "next"}})
	if got, err := io.ReadAll(out); err != nil || string(got) != "next\n" {
		t.Fatalf("dump read %q: %v", got, err)
	}
	out.Close()
	waitFor("the stale dump was not released", func(ps, shm string) bool {
		return !strings.Contains(shm, name) && !strings.Contains(ps, name) && !strings.Contains(ps, "echo data")
	})
}
