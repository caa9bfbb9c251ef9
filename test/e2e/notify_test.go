package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// received is one request a test receiver got.
type received struct {
	path, body string
	header     http.Header
}

// receiver records, in order, what lifeboat serve sends to 127.0.0.1.
type receiver struct {
	*httptest.Server
	mu  sync.Mutex
	got []received
}

func newReceiver(t *testing.T) *receiver {
	r := &receiver{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.got = append(r.got, received{req.URL.Path, string(b), req.Header.Clone()})
		r.mu.Unlock()
	}))
	t.Cleanup(r.Close)
	return r
}

// under waits for at least n requests under path, and returns them.
func (r *receiver) under(t *testing.T, path string, n int) []received {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		r.mu.Lock()
		var out []received
		for _, g := range r.got {
			if strings.HasPrefix(g.path, path) {
				out = append(out, g)
			}
		}
		r.mu.Unlock()
		if len(out) >= n || time.Now().After(deadline) {
			return out
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestNotify runs lifeboat serve with a shoutrrr target (generic, to a
// receiver on 127.0.0.1), a signed webhook and per-unit dead-man pings:
// a backup that succeeds pings start then success and is announced; one
// whose pre hook exits 1 pings start then fail with the error, and the
// target and the webhook (signature verified) hear of the failure.
func TestNotify(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	e.ok("init")
	rec := newReceiver(t)
	host := strings.TrimPrefix(rec.URL, "http://")
	const okPing, failPing, secret = "/ping/ok-0f3c1a2e-uuid", "/ping/fail-7b2d9c4f-uuid", "whsec-e2e-5d1f"
	run := func(name string, labels ...string) {
		args := []string{"run", "-d", "--name", name, "-v", name + "-data:/data"}
		for _, l := range labels {
			args = append(args, "--label", l)
		}
		e.d.Docker(t, append(args, "lifeboat-test/busybox:1", "sleep", "100000")...)
	}
	run("nt-ok", "lifeboat.ping="+rec.URL+okPing, "lifeboat.notify=chat")
	run("nt-fail", "lifeboat.ping="+rec.URL+failPing, "lifeboat.hooks.pre=echo tables locked by another dump >&2; exit 1")

	cfg := filepath.Join(t.TempDir(), "lifeboat.yaml")
	body := "notify:\n  targets:\n" +
		"    - {name: chat, url: 'generic://" + host + "/chat?disabletls=yes&template=json', events: [failure, success]}\n" +
		"webhook: {url: '" + rec.URL + "/hook', secret: " + secret + "}\n"
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "LIFEBOAT_CONFIG="+cfg)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("notify-token-3e9a1c7b5d"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e.serve(t, freePort(t), tokenFile)

	backup := func(unit string) apiJob {
		var j apiJob
		if code := p.api("POST", "/api/v1/jobs", map[string]string{"kind": "backup", "unit": unit}, &j); code != 202 {
			t.Fatalf("backup %s: %d", unit, code)
		}
		return p.waitJob(j.ID, 2*time.Minute)
	}
	type message struct{ Title, Message string }
	chat := func(n int) []message {
		var out []message
		for _, g := range rec.under(t, "/chat", n) {
			var m message
			if err := json.Unmarshal([]byte(g.body), &m); err != nil {
				t.Fatalf("chat body %q: %v", g.body, err)
			}
			out = append(out, m)
		}
		return out
	}

	t.Run("success: start, success ping, announced", func(t *testing.T) {
		if j := backup("container/nt-ok"); j.State != "succeeded" {
			t.Fatalf("backup: %+v", j)
		}
		pings := rec.under(t, okPing, 2)
		if len(pings) != 2 || pings[0].path != okPing+"/start" || pings[1].path != okPing {
			t.Fatalf("pings %+v, want start then success", pings)
		}
		msgs := chat(1)
		if len(msgs) != 1 || !strings.Contains(msgs[0].Title, "backup of container/nt-ok succeeded") || !strings.Contains(msgs[0].Message, "point: ") {
			t.Fatalf("chat got %+v", msgs)
		}
	})

	t.Run("failure: start, fail ping with the error, announced and signed", func(t *testing.T) {
		j := backup("container/nt-fail")
		if j.State != "failed" || !strings.Contains(j.Error, "tables locked") {
			t.Fatalf("backup: %+v", j)
		}
		pings := rec.under(t, failPing, 2)
		if len(pings) != 2 || pings[0].path != failPing+"/start" || pings[1].path != failPing+"/fail" ||
			!strings.Contains(pings[1].body, "tables locked by another dump") || strings.Contains(pings[1].body, "\n") {
			t.Fatalf("pings %+v, want start then fail with the error's first line", pings)
		}
		// nt-fail has no lifeboat.notify label: the default routes, every target.
		msgs := chat(2)
		if len(msgs) != 2 || !strings.Contains(msgs[1].Title, "backup of container/nt-fail failed") || !strings.Contains(msgs[1].Message, "tables locked") {
			t.Fatalf("chat got %+v", msgs)
		}
		hooks := rec.under(t, "/hook", 1)
		if len(hooks) != 1 {
			t.Fatalf("webhook got %d calls, want the failure only", len(hooks))
		}
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write([]byte(hooks[0].body))
		if sig := hooks[0].header.Get("X-Lifeboat-Signature"); !hmac.Equal([]byte(sig), []byte("sha256="+hex.EncodeToString(mac.Sum(nil)))) {
			t.Fatalf("webhook signature %q does not verify", sig)
		}
		var ev struct{ Event, Unit, Error string }
		if err := json.Unmarshal([]byte(hooks[0].body), &ev); err != nil || ev.Event != "job.failed" || ev.Unit != "container/nt-fail" || !strings.Contains(ev.Error, "tables locked") {
			t.Fatalf("webhook event %+v %v", ev, err)
		}
	})

	t.Run("the ping URLs' secrets are shown nowhere", func(t *testing.T) {
		req, _ := http.NewRequest("GET", p.url+"/api/v1/units", nil)
		req.Header.Set("Authorization", "Bearer "+p.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		units, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(units), `"ping_to": "`+rec.URL+`/…"`) {
			t.Fatalf("units do not say where pings go: %s", units)
		}
		for _, s := range []string{"ok-0f3c1a2e-uuid", "fail-7b2d9c4f-uuid", secret} {
			if strings.Contains(string(units), s) || strings.Contains(p.logs(), s) {
				t.Fatalf("%q shown by the API or the log", s)
			}
		}
	})
}
