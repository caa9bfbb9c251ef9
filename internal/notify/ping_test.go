package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestWebhookSigned(t *testing.T) {
	rec := newRecorder(t)
	const secret = "s3cret-of-the-receiver"
	w := &Webhook{URL: rec.URL + "/hook", Secret: secret}
	if err := w.Send(t.Context(), failed); err != nil {
		t.Fatal(err)
	}
	got := rec.requests()
	if len(got) != 1 {
		t.Fatalf("want one request, got %d", len(got))
	}
	// Verify as a receiver does: the HMAC of the raw body, compared in
	// constant time.
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(got[0].Body))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if sig := got[0].Header.Get("X-Lifeboat-Signature"); !hmac.Equal([]byte(sig), []byte(want)) {
		t.Fatalf("signature %q, want %q", sig, want)
	}
	var ev Event
	if err := json.Unmarshal([]byte(got[0].Body), &ev); err != nil || ev.Unit != "project/shop" {
		t.Fatalf("body %q: %v", got[0].Body, err)
	}
	// Unsigned without a secret.
	w.Secret = ""
	if err := w.Send(t.Context(), failed); err != nil {
		t.Fatal(err)
	}
	if sig := rec.requests()[1].Header.Get("X-Lifeboat-Signature"); sig != "" {
		t.Fatalf("unsigned webhook carries %q", sig)
	}
}

func TestPingURL(t *testing.T) {
	for _, c := range []struct{ base, signal, want string }{
		{"https://hc-ping.com/abc", PingStart, "https://hc-ping.com/abc/start"},
		{"https://hc-ping.com/abc/", PingFail, "https://hc-ping.com/abc/fail"},
		{"https://hc-ping.com/abc", PingSuccess, "https://hc-ping.com/abc"},
		{"http://127.0.0.1:8000/ping/key/slug?create=1", PingStart, "http://127.0.0.1:8000/ping/key/slug/start?create=1"},
	} {
		got, err := PingURL(c.base, c.signal)
		if err != nil || got != c.want {
			t.Errorf("PingURL(%q, %q) = %q, %v; want %q", c.base, c.signal, got, err, c.want)
		}
	}
	for _, bad := range []string{"ftp://x/y", "hc-ping.com/abc", "https://"} {
		if err := CheckPingURL(bad); err == nil {
			t.Errorf("CheckPingURL(%q) accepted it", bad)
		}
	}
}

func TestPingsStartSuccessFail(t *testing.T) {
	rec := newRecorder(t)
	n := &Notifier{}
	base := rec.URL + "/ping/0f3c1a2e-uuid"
	n.PingStart(base, "j1").Done(nil)
	n.PingStart(base, "j2").Done(errors.New("hook pre exited 1\nstderr: boom"))
	n.Close(t.Context())
	var seq []string
	for _, q := range rec.requests() {
		seq = append(seq, q.Method+" "+q.Path+" "+q.Body)
	}
	want := []string{
		"POST /ping/0f3c1a2e-uuid/start ", "POST /ping/0f3c1a2e-uuid ",
		"POST /ping/0f3c1a2e-uuid/start ", "POST /ping/0f3c1a2e-uuid/fail hook pre exited 1",
	}
	// Two jobs' pings may interleave; each job's are in order.
	if len(seq) != 4 || !inOrder(seq, want[0], want[1]) || !inOrder(seq, want[2], want[3]) {
		t.Fatalf("pings %q, want %q", seq, want)
	}
}

// inOrder says a comes before b in seq, b's first occurrence after a's.
func inOrder(seq []string, a, b string) bool {
	ia := -1
	for i, s := range seq {
		if s == a && ia < 0 {
			ia = i
		}
		if s == b && ia >= 0 && i > ia {
			return true
		}
	}
	return false
}

func TestPingRetriesAndGivesUpQuickly(t *testing.T) {
	rec := newRecorder(t)
	rec.code = http.StatusBadGateway
	p := &Pinger{Backoff: 10 * time.Millisecond}
	start := time.Now()
	err := p.Ping(t.Context(), rec.URL+"/secret-uuid-123", PingFail, "x")
	if err == nil || len(rec.requests()) != 3 {
		t.Fatalf("err %v after %d attempts, want an error after 3", err, len(rec.requests()))
	}
	if strings.Contains(err.Error(), "secret-uuid-123") {
		t.Fatalf("error shows the URL's secret: %v", err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Fatalf("took %v", took)
	}
	// Nothing listening: the error hides the path too.
	rec.Close()
	err = p.Ping(t.Context(), rec.URL+"/secret-uuid-123", PingStart, "")
	if err == nil || strings.Contains(err.Error(), "secret-uuid-123") {
		t.Fatalf("err %v", err)
	}
}

func TestNotifierDoesNotBlock(t *testing.T) {
	block := make(chan struct{})
	rec := newRecorder(t)
	rec.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block })
	defer close(block)
	r, err := NewRouter([]Target{{Name: "slow", URL: "generic://" + rec.hostPort() + "/x?disabletls=yes"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &Notifier{Router: r, Webhook: &Webhook{URL: rec.URL, Backoff: []time.Duration{}}}
	start := time.Now()
	for range queueSize * 2 {
		n.Notify(failed, nil) // beyond the queue: dropped, never waited for
	}
	if took := time.Since(start); took > time.Second {
		t.Fatalf("Notify blocked for %v", took)
	}
	ctx, cancel := contextWithTimeout(t, 200*time.Millisecond)
	defer cancel()
	n.Close(ctx)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("Close waited %v", took)
	}
	n.Notify(failed, nil) // after Close: dropped, no panic
}

func contextWithTimeout(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), d)
}

func TestNotifierSendsByClass(t *testing.T) {
	rec := newRecorder(t)
	r, err := NewRouter([]Target{{Name: "chat", URL: "generic://" + rec.hostPort() + "/chat?disabletls=yes&template=json", Events: []string{"success"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := &Notifier{Router: r, Webhook: &Webhook{URL: rec.URL + "/hook", Secret: "k"}}
	n.Notify(failed, nil)                                                   // the webhook only (failure is its default)
	n.Notify(Event{Event: BackupSucceeded, Kind: "backup", Unit: "u"}, nil) // the chat target only
	n.Notify(Event{Event: BackupSucceeded, Kind: "backup"}, []string{None}) // the unit said none; the webhook does not want it
	n.Close(t.Context())
	var paths []string
	for _, q := range rec.requests() {
		paths = append(paths, q.Path)
	}
	slices.Sort(paths)
	if strings.Join(paths, " ") != "/chat /hook" {
		t.Fatalf("sent to %v, want /chat and /hook once each", paths)
	}
}
