package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// daemonProc is a `lifeboat serve` process of a test.
type daemonProc struct {
	t     *testing.T
	cmd   *exec.Cmd
	url   string
	token string
	mu    sync.Mutex
	log   bytes.Buffer
}

func (p *daemonProc) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.Write(b)
}

func (p *daemonProc) logs() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.log.String()
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// serve starts lifeboat serve with the env's repository and daemon.
func (e *env) serve(t *testing.T, addr, tokenFile string, extra ...string) *daemonProc {
	t.Helper()
	tok, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	p := &daemonProc{t: t, url: "http://" + addr, token: strings.TrimSpace(string(tok))}
	p.cmd = exec.Command(lifeboatBin, "serve", "--listen", addr, "--token-file", tokenFile)
	p.cmd.Env = mergeEnv(os.Environ(), append(append([]string{}, e.vars...), extra...))
	p.cmd.Stdout, p.cmd.Stderr = p, p
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.cmd.Process.Kill()
			p.cmd.Wait()
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(p.url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("lifeboat serve did not answer /healthz in 30 s; its log:\n%s", p.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// api calls the API with the token and decodes JSON into out (if given).
func (p *daemonProc) api(method, path string, body any, out any) int {
	p.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, p.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+p.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			p.t.Fatalf("%s %s: %d, not JSON: %s", method, path, resp.StatusCode, b)
		}
	}
	return resp.StatusCode
}

type apiJob struct {
	ID, Kind, Unit, State, Error, Point, Trigger string
	Log                                          []string
	Result                                       json.RawMessage
}

func (p *daemonProc) waitJob(id string, timeout time.Duration) apiJob {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var j apiJob
		p.api("GET", "/api/v1/jobs/"+id, nil, &j)
		if j.State == "succeeded" || j.State == "failed" || j.State == "cancelled" {
			return j
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("job %s still %s after %v; daemon log:\n%s", id, j.State, timeout, p.logs())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *daemonProc) points(unit string) []summary {
	p.t.Helper()
	var ps []summary
	p.api("GET", "/api/v1/points?unit="+unit, nil, &ps)
	return ps
}

// TestServe runs the daemon for real: schedules with retention, a newly
// labelled container picked up without restart, every API endpoint, the
// token's protection, and secrets kept out of everything it shows.
func TestServe(t *testing.T) {
	e := newEnvOwnDaemon(t)
	e.d.EnsureImages(t, "busybox")
	e.ok("init")
	state := filepath.Join(t.TempDir(), "state")
	tokenFile := filepath.Join(t.TempDir(), "token")
	token := "test-token-0123456789abcdef-secret"
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "LIFEBOAT_STATE_DIR="+state)
	e.d.Docker(t, "run", "-d", "--name", "sv-app-1", "--label", "com.docker.compose.project=sv", "--label", "com.docker.compose.service=app",
		"--label", "lifeboat.schedule=@every 3s", "--label", "lifeboat.retention=last=3",
		"-e", "APP_PASSWORD=e2e-pw-4711", "-v", "sv_data:/data", "lifeboat-test/busybox:1", "sh", "-c", "echo hello > /data/greeting; while true; do date >> /data/log; sleep 0.2; done")
	e.d.Docker(t, "run", "-d", "--name", "idle", "lifeboat-test/busybox:1", "sleep", "100000")

	// A webhook receiver on 127.0.0.1 records what the daemon sends.
	hooks := make(chan map[string]any, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]any
		json.NewDecoder(r.Body).Decode(&ev)
		hooks <- ev
	}))
	defer receiver.Close()
	cfgFile := filepath.Join(t.TempDir(), "lifeboat.yaml")
	// Tokens of the lower roles, by hash; host-directory restores under
	// one root.
	viewerTok, operatorTok := "viewer-token-0123456789abcdef", "operator-token-0123456789abcdef"
	hash := func(s string) string { h := sha256.Sum256([]byte(s)); return hex.EncodeToString(h[:]) }
	roots := t.TempDir()
	cfgBody := "concurrency: 1\nwebhook:\n  url: " + receiver.URL + "/lifeboat\n" +
		"api:\n  tokens:\n    - {role: viewer, sha256: " + hash(viewerTok) + "}\n    - {role: operator, sha256: " + hash(operatorTok) + "}\n" +
		"restore:\n  target_roots: [" + roots + "]\n"
	if err := os.WriteFile(cfgFile, []byte(cfgBody), 0o600); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "LIFEBOAT_CONFIG="+cfgFile)

	p := e.serve(t, freePort(t), tokenFile)

	t.Run("no token, wrong token", func(t *testing.T) {
		for _, path := range []string{"/api/v1/units", "/api/v1/jobs", "/api/v1/points", "/api/v1/repository", "/metrics", "/api/v1/openapi.json"} {
			for _, auth := range []string{"", "Bearer wrong", "Bearer " + token + "x"} {
				req, _ := http.NewRequest("GET", p.url+path, nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 401 {
					t.Fatalf("%s with %q: %d, want 401", path, auth, resp.StatusCode)
				}
			}
		}
	})

	t.Run("schedule and retention", func(t *testing.T) {
		deadline := time.Now().Add(60 * time.Second)
		var seen int
		for time.Now().Before(deadline) {
			ps := p.points("project/sv")
			if len(ps) > 3 {
				// Between a new point and its retention, for an instant.
				var jobs []apiJob
				p.api("GET", "/api/v1/jobs", nil, &jobs)
				if len(jobs) == 0 || jobs[0].State != "running" {
					t.Fatalf("%d points kept with retention last=3 and no backup running", len(ps))
				}
			}
			if len(ps) == 3 {
				seen++
			}
			if seen >= 3 {
				break
			}
			time.Sleep(time.Second)
		}
		if seen < 3 {
			t.Fatalf("never reached 3 points; daemon log:\n%s", p.logs())
		}
		var units []struct {
			Unit, Schedule, Protection string
			Points                     int
			LastSuccess                *time.Time `json:"last_success"`
			NextRun                    *time.Time `json:"next_run"`
		}
		p.api("GET", "/api/v1/units", nil, &units)
		var found, idle bool
		for _, u := range units {
			switch u.Unit {
			case "project/sv":
				found = u.Schedule == "@every 3s" && u.Protection == "protected" && u.LastSuccess != nil && u.NextRun != nil
			case "container/idle":
				// Protected by policy, but no schedule will ever back it up.
				idle = u.Schedule == "" && u.Protection == "unscheduled"
			}
		}
		if !found || !idle {
			t.Fatalf("units: %+v", units)
		}
	})

	t.Run("a newly labelled container is protected without restart", func(t *testing.T) {
		e.d.Docker(t, "run", "-d", "--name", "sv-new", "--label", "lifeboat.schedule=@every 3s", "lifeboat-test/busybox:1", "sleep", "100000")
		deadline := time.Now().Add(30 * time.Second)
		for len(p.points("container/sv-new")) == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("no point of the new container in 30 s; log:\n%s", p.logs())
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	t.Run("points, browse, download", func(t *testing.T) {
		ps := p.points("project/sv")
		var pt summary
		if code := p.api("GET", "/api/v1/points/"+ps[0].ID[:10], nil, &pt); code != 200 || pt.ID != ps[0].ID {
			t.Fatalf("point by prefix: %d %+v", code, pt)
		}
		var entries []struct{ Name, Type string }
		p.api("GET", "/api/v1/points/"+pt.ID+"/files?path=volumes/sv_data", nil, &entries)
		names := fmt.Sprint(entries)
		if !strings.Contains(names, "greeting") || !strings.Contains(names, "log") {
			t.Fatalf("browse: %s", names)
		}
		req, _ := http.NewRequest("GET", p.url+"/api/v1/points/"+pt.ID+"/download?path=volumes/sv_data/greeting", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(b) != "hello\n" {
			t.Fatalf("download: %d %q", resp.StatusCode, b)
		}
		var errBody map[string]string
		if code := p.api("GET", "/api/v1/points/"+pt.ID+"/files?path=nope", nil, &errBody); code != 404 {
			t.Fatalf("missing path: %d %v", code, errBody)
		}
		if code := p.api("GET", "/api/v1/points/ffffffffffff", nil, &errBody); code != 404 {
			t.Fatalf("missing point: %d", code)
		}
	})

	t.Run("jobs: backup, restore, cancel, bad requests", func(t *testing.T) {
		var j apiJob
		if code := p.api("POST", "/api/v1/jobs", map[string]any{"kind": "backup", "unit": "container/idle"}, &j); code != 202 {
			t.Fatalf("backup job: %d %+v", code, j)
		}
		if done := p.waitJob(j.ID, 60*time.Second); done.State != "succeeded" || done.Point == "" || len(done.Log) == 0 {
			t.Fatalf("backup job ended %+v", done)
		}
		pt := p.points("project/sv")[0]
		// A dry run through the API creates nothing: not the volume, not
		// the unit's containers.
		if code := p.api("POST", "/api/v1/jobs", map[string]any{"kind": "restore", "restore": map[string]any{"point": pt.ID, "volume": "sv_data", "as": "sv_dry", "dry_run": true}}, &j); code != 202 {
			t.Fatalf("dry-run restore job: %d", code)
		}
		if done := p.waitJob(j.ID, 60*time.Second); done.State != "succeeded" || !strings.Contains(strings.Join(done.Log, "\n"), "volume sv_dry") {
			t.Fatalf("dry-run restore job: %+v", done)
		}
		if out, err := e.d.DockerErr("volume", "inspect", "sv_dry"); err == nil {
			t.Fatalf("the dry run created volume sv_dry: %s", out)
		}
		if code := p.api("POST", "/api/v1/jobs", map[string]any{"kind": "restore", "restore": map[string]any{"point": pt.ID, "as": "sv_drycopy", "dry_run": true}}, &j); code != 202 {
			t.Fatalf("dry-run unit restore job: %d", code)
		}
		p.waitJob(j.ID, 60*time.Second)
		if ids := e.d.Docker(t, "ps", "-aq", "--filter", "label=com.docker.compose.project=sv_drycopy"); strings.TrimSpace(ids) != "" {
			t.Fatalf("the dry run created containers: %s", ids)
		}
		if code := p.api("POST", "/api/v1/jobs", map[string]any{"kind": "restore", "restore": map[string]any{"point": pt.ID, "volume": "sv_data", "as": "sv_copy"}}, &j); code != 202 {
			t.Fatalf("restore job: %d", code)
		}
		if done := p.waitJob(j.ID, 60*time.Second); done.State != "succeeded" {
			t.Fatalf("restore job: %+v", done)
		}
		e.d.Docker(t, "volume", "inspect", "sv_copy")

		e.d.Docker(t, "run", "-d", "--name", "slow", "--label", "lifeboat.hooks.pre=sleep 60", "lifeboat-test/busybox:1", "sleep", "100000")
		p.api("POST", "/api/v1/jobs", map[string]any{"kind": "backup", "unit": "container/slow"}, &j)
		time.Sleep(time.Second)
		if code := p.api("POST", "/api/v1/jobs/"+j.ID+"/cancel", nil, nil); code != 202 {
			t.Fatalf("cancel: %d", code)
		}
		if done := p.waitJob(j.ID, 30*time.Second); done.State != "cancelled" {
			t.Fatalf("cancelled job: %+v", done)
		}
		if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", "slow"); st != "running" {
			t.Fatalf("a cancelled backup left its container %s", st)
		}
		if code := p.api("POST", "/api/v1/jobs/"+j.ID+"/cancel", nil, nil); code != 409 {
			t.Fatalf("cancel an ended job: %d, want 409", code)
		}
		for body, want := range map[string]int{`{"kind":"backup","unit":"container/nope"}`: 404, `{"kind":"dance"}`: 400, `{"kind":"backup","unit":"nope"}`: 400, `{"kind":"restore"}`: 400, `{"knd":"x"}`: 400,
			// Validated as the CLI validates: a relative target, and any
			// target while restore.target_roots is unset.
			`{"kind":"restore","restore":{"point":"` + pt.ID + `","target":"rel/dir"}}`: 400, `{"kind":"restore","restore":{"point":"` + pt.ID + `","target":"/tmp/x"}}`: 400,
			`{"kind":"restore","restore":{"point":"` + pt.ID + `","path":"volumes"}}`: 400} {
			req, _ := http.NewRequest("POST", p.url+"/api/v1/jobs", strings.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("POST %s: %d, want %d", body, resp.StatusCode, want)
			}
		}
		var jobs []apiJob
		p.api("GET", "/api/v1/jobs", nil, &jobs)
		if len(jobs) < 5 {
			t.Fatalf("job list: %d jobs", len(jobs))
		}
		if code := p.api("POST", "/api/v1/jobs", map[string]any{"kind": "maintenance"}, &j); code != 202 || p.waitJob(j.ID, 60*time.Second).State != "succeeded" {
			t.Fatalf("maintenance job: %d", code)
		}
		if code := p.api("POST", "/api/v1/jobs", map[string]any{"kind": "forget"}, &j); code != 202 || p.waitJob(j.ID, 60*time.Second).State != "succeeded" {
			t.Fatalf("forget job: %d", code)
		}
		if code := p.api("POST", "/api/v1/jobs", map[string]any{"kind": "check"}, &j); code != 202 || p.waitJob(j.ID, 60*time.Second).State != "succeeded" {
			t.Fatalf("check job: %d", code)
		}
	})

	t.Run("roles and masking", func(t *testing.T) {
		call := func(tok, method, path, body string) (int, string) {
			t.Helper()
			var rd io.Reader
			if body != "" {
				rd = strings.NewReader(body)
			}
			req, _ := http.NewRequest(method, p.url+path, rd)
			req.Header.Set("Authorization", "Bearer "+tok)
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		pt := p.points("project/sv")[0]
		cfgPath := "/api/v1/points/" + pt.ID + "/download?path=containers/sv-app-1/config.json"
		for _, tok := range []string{viewerTok, operatorTok} {
			code, body := call(tok, "GET", cfgPath, "")
			if code != 200 || strings.Contains(body, "e2e-pw-4711") || !strings.Contains(body, "APP_PASSWORD=[masked]") {
				t.Fatalf("config.json below admin: %d\n%s", code, body)
			}
			if code, _ := call(tok, "GET", "/api/v1/points/"+pt.ID+"/download?path=volumes/sv_data/greeting", ""); code != 403 {
				t.Fatalf("file contents below admin: %d, want 403", code)
			}
		}
		if code, body := call(token, "GET", cfgPath, ""); code != 200 || !strings.Contains(body, "APP_PASSWORD=e2e-pw-4711") {
			t.Fatalf("config.json for admin: %d", code)
		}
		docker := `{"kind":"restore","restore":{"point":"` + pt.ID + `","volume":"sv_data","as":"sv_roles","dry_run":true}}`
		host := `{"kind":"restore","restore":{"point":"` + pt.ID + `","volume":"sv_data","target":"` + roots + `/greet"}}`
		for _, c := range []struct {
			tok, body string
			want      int
		}{{viewerTok, docker, 403}, {operatorTok, docker, 202}, {operatorTok, host, 403}, {viewerTok, host, 403},
			{token, `{"kind":"restore","restore":{"point":"` + pt.ID + `","volume":"sv_data","target":"` + t.TempDir() + `"}}`, 400}} {
			if code, body := call(c.tok, "POST", "/api/v1/jobs", c.body); code != c.want {
				t.Fatalf("%s: %s: %d, want %d: %s", c.tok[:6], c.body, code, c.want, body)
			}
		}
		code, body := call(token, "POST", "/api/v1/jobs", host)
		var j apiJob
		json.Unmarshal([]byte(body), &j)
		if code != 202 || p.waitJob(j.ID, 60*time.Second).State != "succeeded" {
			t.Fatalf("admin restore under the root: %d %s", code, body)
		}
		if b, err := os.ReadFile(filepath.Join(roots, "greet", "greeting")); err != nil || strings.TrimSpace(string(b)) != "hello" {
			t.Fatalf("restored under the root: %q %v", b, err)
		}
	})

	t.Run("a failed job is sent to the webhook", func(t *testing.T) {
		e.d.Docker(t, "run", "-d", "--name", "failing", "--label", "lifeboat.hooks.pre=echo no lock >&2; exit 4", "lifeboat-test/busybox:1", "sleep", "100000")
		var j apiJob
		p.api("POST", "/api/v1/jobs", map[string]any{"kind": "backup", "unit": "container/failing"}, &j)
		if done := p.waitJob(j.ID, 60*time.Second); done.State != "failed" || !strings.Contains(done.Error, "no lock") {
			t.Fatalf("failing job: %+v", done)
		}
		select {
		case ev := <-hooks:
			if ev["event"] != "job.failed" || ev["job"] != j.ID || ev["unit"] != "container/failing" || !strings.Contains(fmt.Sprint(ev["error"]), "exited 4") {
				t.Fatalf("webhook event: %v", ev)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("no webhook call in 20 s")
		}
	})

	t.Run("repository, metrics, openapi, login cookie", func(t *testing.T) {
		var repo struct {
			Location string
			Points   int
			Size     int64 `json:"size_bytes"`
		}
		p.api("GET", "/api/v1/repository", nil, &repo)
		if repo.Location != e.repo || repo.Points < 3 || repo.Size <= 0 {
			t.Fatalf("repository: %+v", repo)
		}
		req, _ := http.NewRequest("GET", p.url+"/metrics", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`lifeboat_unit_last_success_timestamp_seconds{unit="project/sv"}`, `lifeboat_unit_backup_failures_total{unit="container/failing"} 1`,
			"lifeboat_repository_size_bytes", "lifeboat_jobs_queued", "lifeboat_check_last_ok 1", `lifeboat_unit_last_downtime_seconds{unit="project/sv"}`} {
			if !strings.Contains(string(m), want) {
				t.Errorf("metrics lack %s:\n%s", want, m)
			}
		}
		var doc struct {
			OpenAPI string
			Paths   map[string]any
		}
		p.api("GET", "/api/v1/openapi.json", nil, &doc)
		if !strings.HasPrefix(doc.OpenAPI, "3.") || len(doc.Paths) < 10 {
			t.Fatalf("openapi: %+v", doc)
		}
		bad, _ := http.Post(p.url+"/api/v1/login", "application/json", strings.NewReader(`{"token":"nope"}`))
		bad.Body.Close()
		if bad.StatusCode != 401 {
			t.Fatalf("login with a wrong token: %d", bad.StatusCode)
		}
		ok, _ := http.Post(p.url+"/api/v1/login", "application/json", strings.NewReader(`{"token":"`+token+`"}`))
		ok.Body.Close()
		var cookie *http.Cookie
		for _, c := range ok.Cookies() {
			if c.Name == "lifeboat_session" {
				cookie = c
			}
		}
		if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Value == token {
			t.Fatalf("login cookie: %+v", ok.Cookies())
		}
		withCookie := func(method, path, ctype string) int {
			req, _ := http.NewRequest(method, p.url+path, nil)
			req.AddCookie(cookie)
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if code := withCookie("GET", "/api/v1/units", ""); code != 200 {
			t.Fatalf("units with the cookie: %d", code)
		}
		if code := withCookie("POST", "/api/v1/logout", "application/json"); code != 200 {
			t.Fatalf("logout: %d", code)
		}
		if code := withCookie("GET", "/api/v1/units", ""); code != 401 {
			t.Fatalf("units with a logged-out session: %d, want 401", code)
		}
	})

	t.Run("secrets stay out", func(t *testing.T) {
		pw, _ := os.ReadFile(e.pwFile)
		secrets := []string{token, strings.TrimSpace(string(pw))}
		ps, _ := exec.Command("ps", "-eo", "args").Output()
		var bodies []string
		for _, path := range []string{"/api/v1/units", "/api/v1/jobs", "/api/v1/repository", "/api/v1/points", "/metrics"} {
			req, _ := http.NewRequest("GET", p.url+path, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			bodies = append(bodies, string(b))
		}
		hist, _ := os.ReadFile(filepath.Join(state, "jobs.jsonl"))
		labels := e.ok("snapshots", "--json").stdout
		for _, s := range secrets {
			for what, text := range map[string]string{"ps": string(ps), "daemon log": p.logs(), "API": strings.Join(bodies, "\n"), "job history": string(hist), "labels": labels} {
				if strings.Contains(text, s) {
					t.Errorf("a secret is in the %s", what)
				}
			}
		}
	})

	t.Run("SIGKILL mid-job, then restart", func(t *testing.T) {
		p.cmd.Process.Signal(syscall.SIGTERM)
		if err := p.cmd.Wait(); err != nil {
			t.Fatalf("SIGTERM: %v\n%s", err, p.logs())
		}
		// This daemon stops in the middle of its first backup, with
		// project/sv paused, and is killed there.
		k := e.serve(t, freePort(t), tokenFile, "LIFEBOAT_TEST_FAILPOINT=frozen")
		deadline := time.Now().Add(30 * time.Second)
		for !strings.Contains(k.logs(), "failpoint frozen") {
			if time.Now().After(deadline) {
				t.Fatalf("the failpoint was not reached; log:\n%s", k.logs())
			}
			time.Sleep(100 * time.Millisecond)
		}
		var paused []string
		for _, c := range []string{"sv-app-1", "sv-new"} {
			if st := e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", c); st == "paused" {
				paused = append(paused, c)
			}
		}
		if len(paused) == 0 {
			t.Fatal("no scheduled container is paused at the failpoint")
		}
		t.Logf("killed with %v paused", paused)
		var running []apiJob
		k.api("GET", "/api/v1/jobs", nil, &running)
		k.cmd.Process.Kill()
		k.cmd.Wait()
		var killed string
		for _, j := range running {
			if j.State == "running" {
				killed = j.ID
			}
		}
		if killed == "" {
			t.Fatalf("no running job seen before the kill: %+v", running)
		}

		r := e.serve(t, freePort(t), tokenFile)
		// The new daemon's own scheduled backups pause containers for
		// milliseconds; one left paused by the killed daemon stays so.
		for _, c := range []string{"sv-app-1", "sv-new", "idle"} {
			st := ""
			for i := 0; i < 50 && st != "running"; i++ {
				st = e.d.Docker(t, "inspect", "-f", "{{.State.Status}}", c)
				time.Sleep(100 * time.Millisecond)
			}
			if st != "running" {
				t.Fatalf("%s is %s after the restart", c, st)
			}
		}
		// Which unit the killed daemon had frozen is the schedule's choice:
		// the restart must name each container it found paused.
		for _, c := range paused {
			if !strings.Contains(r.logs(), "resumed "+c) && !strings.Contains(r.logs(), ", "+c) {
				t.Errorf("the restart did not say it resumed %s:\n%s", c, r.logs())
			}
		}
		var j apiJob
		r.api("GET", "/api/v1/jobs/"+killed, nil, &j)
		if j.State != "failed" || !strings.Contains(j.Error, "interrupted") {
			t.Fatalf("the killed job in history: %+v", j)
		}
		before := len(r.points("project/sv"))
		var next apiJob
		r.api("POST", "/api/v1/jobs", map[string]any{"kind": "backup", "unit": "project/sv"}, &next)
		if done := r.waitJob(next.ID, 60*time.Second); done.State != "succeeded" {
			t.Fatalf("the next job: %+v\n%s", done, r.logs())
		}
		if before == 0 {
			t.Fatal("no points after the restart")
		}
		r.cmd.Process.Signal(syscall.SIGTERM)
		r.cmd.Wait()
	})
}
