package engine

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConnectTooOldEngine: an engine below the client's minimum API
// version is refused at Connect with a line saying to upgrade, not later
// with an error on every call. No such engine is installed, so a socket
// answers /_ping the way Docker 18.09 (API 1.39) does.
func TestConnectTooOldEngine(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "old.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var paths []string
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.URL.Path)
		mu.Unlock()
		w.Header().Set("Api-Version", "1.39")
		_, _ = w.Write([]byte("OK"))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := ConnectHost(ctx, "unix://"+sock, slog.New(slog.DiscardHandler))
	if err == nil {
		c.Close()
		t.Fatal("Connect to an API 1.39 engine succeeded")
	}
	if msg := err.Error(); !strings.Contains(msg, "API 1.39") || !strings.Contains(msg, "upgrade Docker") {
		t.Errorf("Connect: %v, want it to name API 1.39 and say to upgrade", err)
	}
	t.Logf("Connect: %v", err)
	mu.Lock()
	defer mu.Unlock()
	for _, p := range paths {
		if p != "/_ping" {
			t.Errorf("Connect called %s on a refused engine", p)
		}
	}
}
