package server

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAuth(t *testing.T) {
	h := New(testOptions(&fakeBackend{}))
	for _, tc := range []struct {
		name   string
		header string
		want   int
	}{
		{"no credentials", "", 401},
		{"wrong token", "Bearer not-a-token-of-this-server", 401},
		{"token prefix", "Bearer " + adminToken[:20], 401},
		{"basic auth", "Basic YWRtaW46cGFzcw==", 401},
		{"viewer", "Bearer " + viewerToken, 200},
		{"admin", "Bearer " + adminToken, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, h, req{method: "GET", path: "/api/v1/units", header: map[string]string{"Authorization": tc.header}})
			if w.Code != tc.want {
				t.Fatalf("%d, want %d: %s", w.Code, tc.want, w.Body)
			}
		})
	}
	if w := do(t, h, req{method: "GET", path: "/healthz"}); w.Code != 200 {
		t.Fatalf("healthz needs no token: %d", w.Code)
	}
}

func TestRoles(t *testing.T) {
	backup := `{"kind":"backup","unit":"container/web"}`
	intoDocker := `{"kind":"restore","restore":{"point":"p1","volume":"data","as":"copy"}}`
	intoHost := `{"kind":"restore","restore":{"point":"p1","target":"/srv/restore/x"}}`
	planHost := `{"point":"p1","target":"/srv/restore/x"}`
	for _, tc := range []struct {
		name                   string
		method, path, body     string
		viewer, operator, admn int
	}{
		{"status", "GET", "/api/v1/units", "", 200, 200, 200},
		{"points", "GET", "/api/v1/points", "", 200, 200, 200},
		{"browse names", "GET", "/api/v1/points/p1/files?path=", "", 200, 200, 200},
		{"jobs", "GET", "/api/v1/jobs", "", 200, 200, 200},
		{"metrics", "GET", "/metrics", "", 200, 200, 200},
		{"start a backup", "POST", "/api/v1/jobs", backup, 403, 202, 202},
		{"upkeep", "POST", "/api/v1/jobs", `{"kind":"check"}`, 403, 202, 202},
		{"cancel", "POST", "/api/v1/jobs/j1/cancel", "", 403, 202, 202},
		{"restore into Docker", "POST", "/api/v1/jobs", intoDocker, 403, 202, 202},
		{"restore into a host directory", "POST", "/api/v1/jobs", intoHost, 403, 403, 202},
		{"compose files into a host directory", "POST", "/api/v1/jobs", `{"kind":"restore","restore":{"point":"p1","compose_dir":"/srv/restore/c"}}`, 403, 403, 202},
		{"plan into Docker", "POST", "/api/v1/restore/plan", `{"point":"p1","volume":"data"}`, 403, 200, 200},
		{"plan into a host directory", "POST", "/api/v1/restore/plan", planHost, 403, 403, 200},
		{"drill", "POST", "/api/v1/jobs", `{"kind":"drill","unit":"project/shop"}`, 403, 202, 202},
		{"acknowledge an anomaly", "POST", "/api/v1/points/p1/ack", "", 403, 200, 200},
		{"acknowledge a good point", "POST", "/api/v1/points/good/ack", "", 403, 409, 409},
		{"manifest", "GET", "/api/v1/points/p1/download?path=lifeboat.json", "", 200, 200, 200},
		{"container config", "GET", "/api/v1/points/p1/download?path=containers/db/config.json", "", 200, 200, 200},
		{"volume file", "GET", "/api/v1/points/p1/download?path=volumes/app_data/secret.txt", "", 403, 403, 200},
		{"dump", "GET", "/api/v1/points/p1/download?path=dumps/db/all.sql", "", 403, 403, 200},
		{"path games", "GET", "/api/v1/points/p1/download?path=containers/db/../../volumes/app_data/secret.txt", "", 403, 403, 200},
		{"dotted metadata", "GET", "/api/v1/points/p1/download?path=./containers/x/../db/config.json", "", 200, 200, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, r := range []struct {
				token string
				want  int
			}{{viewerToken, tc.viewer}, {operatorToken, tc.operator}, {adminToken, tc.admn}} {
				b := &fakeBackend{}
				h := New(testOptions(b))
				w := do(t, h, req{method: tc.method, path: tc.path, body: tc.body, token: r.token})
				if w.Code != r.want {
					t.Errorf("%s: %d, want %d: %s", strings.SplitN(r.token, "-", 2)[0], w.Code, r.want, w.Body)
				}
				if w.Code == 403 && (b.submits() > 0 || len(b.planned) > 0) {
					t.Errorf("%s: refused, but the backend was called", r.token)
				}
			}
		})
	}
}

func TestMasking(t *testing.T) {
	h := New(testOptions(&fakeBackend{}))
	get := func(token, path string) string {
		w := do(t, h, req{method: "GET", path: "/api/v1/points/p1/download?path=" + path, token: token})
		if w.Code != 200 {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		return w.Body.String()
	}
	for _, tok := range []string{viewerToken, operatorToken} {
		body := get(tok, "containers/db/config.json")
		for _, s := range secrets {
			if strings.Contains(body, s) {
				t.Errorf("%s sees %q:\n%s", strings.SplitN(tok, "-", 2)[0], s, body)
			}
		}
		for _, want := range []string{"POSTGRES_PASSWORD=" + Masked, "DB_PASSWORD_FILE=" + Masked, "PLAIN=visible", `"com.example.team": "infra"`, "/srv/db:/var/lib/postgresql/data"} {
			if !strings.Contains(body, want) {
				t.Errorf("masked config lacks %s:\n%s", want, body)
			}
		}
	}
	if body := get(adminToken, "containers/db/config.json"); body != configJSON {
		t.Errorf("admin gets the configuration as captured, got:\n%s", body)
	}
}

func TestSecretName(t *testing.T) {
	for name, want := range map[string]bool{"POSTGRES_PASSWORD": true, "mysql_root_password": true, "API_TOKEN": true, "AWS_SECRET_ACCESS_KEY": true,
		"SSH_KEY": true, "DB_PASSWORD_FILE": true, "MINIO_ROOT_PASSWD": true, "PATH": false, "PGDATA": false, "TZ": false,
		"lifeboat.ping": true, "lifeboat.notify": false} {
		if SecretName(name) != want {
			t.Errorf("SecretName(%s) = %v", name, !want)
		}
	}
}

// login signs in with token and returns the session cookie.
func login(t *testing.T, h http.Handler, token string) *http.Cookie {
	t.Helper()
	w := do(t, h, req{method: "POST", path: "/api/v1/login", body: `{"token":"` + token + `"}`})
	if w.Code != 200 {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	t.Fatal("login set no session cookie")
	return nil
}

func TestSessions(t *testing.T) {
	var mu sync.Mutex
	now := time.Now()
	opts := testOptions(&fakeBackend{})
	opts.SessionTTL = time.Hour
	opts.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := New(opts)

	if w := do(t, h, req{method: "POST", path: "/api/v1/login", body: `{"token":"wrong-token-wrong-token"}`}); w.Code != 401 || len(w.Result().Cookies()) != 0 {
		t.Fatalf("wrong token: %d %v", w.Code, w.Result().Cookies())
	}
	c := login(t, h, operatorToken)
	if c.Value == operatorToken || strings.Contains(c.Value, "operator") || len(c.Value) < 64 || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode {
		t.Fatalf("the session cookie: %+v", c)
	}
	if c2 := login(t, h, operatorToken); c2.Value == c.Value {
		t.Fatal("two sign-ins got the same session ID")
	}
	if w := do(t, h, req{method: "GET", path: "/api/v1/session", cookie: c}); w.Code != 200 || !strings.Contains(w.Body.String(), "operator") {
		t.Fatalf("whoami: %d %s", w.Code, w.Body)
	}
	if w := do(t, h, req{method: "POST", path: "/api/v1/jobs", body: `{"kind":"check"}`, cookie: c}); w.Code != 202 {
		t.Fatalf("a job with the session: %d %s", w.Code, w.Body)
	}
	t.Run("logout revokes", func(t *testing.T) {
		if w := do(t, h, req{method: "POST", path: "/api/v1/logout", cookie: c, ctype: "application/json"}); w.Code != 200 {
			t.Fatalf("logout: %d", w.Code)
		}
		// The browser forgets the cookie; a copy of it is worth nothing.
		for _, r := range []req{{method: "GET", path: "/api/v1/units", cookie: c}, {method: "POST", path: "/api/v1/jobs", body: `{"kind":"check"}`, cookie: c}} {
			if w := do(t, h, r); w.Code != 401 {
				t.Errorf("%s %s with a logged-out session: %d", r.method, r.path, w.Code)
			}
		}
	})
	t.Run("expiry", func(t *testing.T) {
		c := login(t, h, viewerToken)
		mu.Lock()
		now = now.Add(59 * time.Minute)
		mu.Unlock()
		if w := do(t, h, req{method: "GET", path: "/api/v1/units", cookie: c}); w.Code != 200 {
			t.Fatalf("a live session: %d", w.Code)
		}
		mu.Lock()
		now = now.Add(2 * time.Minute)
		mu.Unlock()
		if w := do(t, h, req{method: "GET", path: "/api/v1/units", cookie: c}); w.Code != 401 {
			t.Fatalf("an expired session: %d", w.Code)
		}
	})
	t.Run("a forged ID", func(t *testing.T) {
		forged := &http.Cookie{Name: CookieName, Value: strings.Repeat("ab", 32)}
		if w := do(t, h, req{method: "GET", path: "/api/v1/units", cookie: forged}); w.Code != 401 {
			t.Fatalf("a made-up session ID: %d", w.Code)
		}
	})
}

func TestCrossOrigin(t *testing.T) {
	b := &fakeBackend{}
	h := New(testOptions(b))
	c := login(t, h, adminToken)
	job := `{"kind":"backup","unit":"container/web"}`
	for _, tc := range []struct {
		name string
		r    req
		want int
	}{
		{"cross-site fetch with the session", req{body: job, header: map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}}, 403},
		{"same-site sibling with the session", req{body: job, header: map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "https://other.lifeboat.test"}}, 403},
		{"old browser, foreign Origin", req{body: job, header: map[string]string{"Origin": "https://evil.example"}}, 403},
		{"text/plain simple request", req{body: job, ctype: "text/plain"}, 415},
		{"form post", req{body: "kind=backup", ctype: "application/x-www-form-urlencoded"}, 415},
		{"no content type", req{body: job, ctype: "-"}, 415},
		{"same origin JSON", req{body: job, header: map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": "http://lifeboat.test"}}, 202},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := b.submits()
			r := tc.r
			r.method, r.path, r.cookie = "POST", "/api/v1/jobs", c
			if w := do(t, h, r); w.Code != tc.want {
				t.Fatalf("%d, want %d: %s", w.Code, tc.want, w.Body)
			}
			if tc.want != 202 && b.submits() != before {
				t.Fatal("refused, but the job was submitted")
			}
		})
	}
	t.Run("bodiless POST from a session needs JSON too", func(t *testing.T) {
		if w := do(t, h, req{method: "POST", path: "/api/v1/jobs/j1/cancel", cookie: c}); w.Code != 415 {
			t.Fatalf("%d, want 415", w.Code)
		}
	})
	t.Run("bearer text/plain body", func(t *testing.T) {
		if w := do(t, h, req{method: "POST", path: "/api/v1/jobs", body: job, ctype: "text/plain", token: adminToken}); w.Code != 415 {
			t.Fatalf("%d, want 415", w.Code)
		}
	})
	t.Run("bearer bodiless cancel", func(t *testing.T) {
		if w := do(t, h, req{method: "POST", path: "/api/v1/jobs/j1/cancel", token: operatorToken}); w.Code != 202 {
			t.Fatalf("%d, want 202", w.Code)
		}
	})
	t.Run("cross-site login", func(t *testing.T) {
		w := do(t, h, req{method: "POST", path: "/api/v1/login", body: `{"token":"` + adminToken + `"}`, header: map[string]string{"Sec-Fetch-Site": "cross-site"}})
		if w.Code != 403 {
			t.Fatalf("%d, want 403", w.Code)
		}
	})
}

func TestBodies(t *testing.T) {
	h := New(testOptions(&fakeBackend{}))
	big := `{"kind":"backup","unit":"` + strings.Repeat("x", 2<<20) + `"}`
	if w := do(t, h, req{method: "POST", path: "/api/v1/jobs", body: big, token: adminToken}); w.Code != 413 {
		t.Fatalf("a 2 MiB body: %d, want 413", w.Code)
	}
	if w := do(t, h, req{method: "POST", path: "/api/v1/jobs", body: `{"kind":"restore","restore":{"point":"p1","dryrun":true}}`, token: adminToken}); w.Code != 400 {
		t.Fatalf("a misspelt field: %d, want 400", w.Code)
	}
}
