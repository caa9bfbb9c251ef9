package engine

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeFreezer is an engine whose freezer fails the first `fails` pauses
// the way runc does under load, then holds; inspect tells the truth.
func fakeFreezer(t *testing.T, fails int32, errText string) (*Client, *atomic.Int32) {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "engine.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var calls atomic.Int32
	var paused atomic.Bool
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Api-Version", "1.41")
		switch {
		case strings.HasSuffix(r.URL.Path, "/_ping"):
			_, _ = w.Write([]byte("OK"))
		case strings.HasSuffix(r.URL.Path, "/info"):
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"Name":"fake","ServerVersion":"20.10.24"}`))
		case strings.HasSuffix(r.URL.Path, "/pause"):
			if calls.Add(1) <= fails {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				fmt.Fprintf(w, `{"message":%q}`, errText)
				return
			}
			paused.Store(true)
			w.WriteHeader(http.StatusNoContent)
		case strings.HasSuffix(r.URL.Path, "/json"):
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"Id":"c1","Name":"/c1","State":{"Status":"running","Running":true,"Paused":%v},"Config":{},"HostConfig":{}}`, paused.Load())
		default:
			http.NotFound(w, r)
		}
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ConnectHost(ctx, "unix://"+sock, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c, &calls
}

const freezeFailed = "Cannot pause container c1: OCI runtime pause failed: unable to freeze: unknown"

// TestPauseRetriesAFreezeThatFailed: runc's "unable to freeze" under load
// is tried again, and the pause holds; other errors are not retried, and
// a freezer that keeps failing fails the pause after three tries.
func TestPauseRetriesAFreezeThatFailed(t *testing.T) {
	c, calls := fakeFreezer(t, 2, freezeFailed)
	if err := c.Pause(t.Context(), "c1"); err != nil {
		t.Fatalf("pause after two failed freezes: %v", err)
	}
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d pause calls, want 3", n)
	}

	c, calls = fakeFreezer(t, 10, freezeFailed)
	if err := c.Pause(t.Context(), "c1"); err == nil || !strings.Contains(err.Error(), "unable to freeze") {
		t.Fatalf("a freezer that keeps failing: %v", err)
	}
	if n := calls.Load(); n != pauseAttempts {
		t.Fatalf("%d pause calls, want %d", n, pauseAttempts)
	}

	c, calls = fakeFreezer(t, 10, "Container c1 is restarting, wait until the container is running")
	if err := c.Pause(t.Context(), "c1"); err == nil {
		t.Fatal("a refused pause succeeded")
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("another error was tried %d times, want once", n)
	}
}
