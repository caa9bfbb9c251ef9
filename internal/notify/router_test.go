package notify

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

var failed = Event{Event: JobFailed, Host: "h1", Job: "j1", Kind: "backup", Unit: "project/shop",
	Error: "hook pre exited 1\nmore detail", Started: time.Unix(100, 0), Ended: time.Unix(103, 0)}

func TestRouterGenericNtfyGotify(t *testing.T) {
	rec := newRecorder(t)
	targets := []Target{
		{Name: "hook", URL: "generic://" + rec.hostPort() + "/generic/path?disabletls=yes&template=json"},
		{Name: "phone", URL: "ntfy://" + rec.hostPort() + "/lifeboat-alerts?scheme=http"},
		{Name: "gotify", URL: "gotify://" + rec.hostPort() + "/Asecrettoken123?disabletls=yes"},
	}
	r, err := NewRouter(targets, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Send(failed, nil); err != nil {
		t.Fatal(err)
	}
	byPath := map[string]request{}
	for _, q := range rec.requests() {
		byPath[q.Path] = q
	}
	if len(byPath) != 3 {
		t.Fatalf("want 3 requests, got %+v", rec.requests())
	}
	var generic map[string]string
	if err := json.Unmarshal([]byte(byPath["/generic/path"].Body), &generic); err != nil {
		t.Fatalf("generic body %q: %v", byPath["/generic/path"].Body, err)
	}
	if generic["title"] != "lifeboat: backup of project/shop failed on h1" || !strings.Contains(generic["message"], "error: hook pre exited 1") {
		t.Fatalf("generic got %+v", generic)
	}
	ntfy := byPath["/lifeboat-alerts"]
	if !strings.Contains(ntfy.Body, "project/shop") || !strings.Contains(ntfy.Body, "hook pre exited 1") {
		t.Fatalf("ntfy got %+v", ntfy)
	}
	gotify := byPath["/message"]
	if !strings.Contains(gotify.Query+gotify.Header.Get("X-Gotify-Key"), "Asecrettoken123") || !strings.Contains(gotify.Body, "hook pre exited 1") {
		t.Fatalf("gotify got %+v", gotify)
	}
}

func TestRouterSMTP(t *testing.T) {
	s := newSMTPReceiver(t)
	host, port, _ := strings.Cut(s.addr, ":")
	url := "smtp://" + host + ":" + port + "/?from=lifeboat@example.test&to=ops@example.test&auth=None&encryption=None&usestarttls=no"
	r, err := NewRouter([]Target{{Name: "mail", URL: url}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Send(failed, nil); err != nil {
		t.Fatal(err)
	}
	got := s.received()
	if len(got) != 1 {
		t.Fatalf("want one mail, got %d", len(got))
	}
	m := got[0]
	if !strings.Contains(m.From, "lifeboat@example.test") || len(m.To) != 1 || !strings.Contains(m.To[0], "ops@example.test") {
		t.Fatalf("envelope %+v", m)
	}
	for _, want := range []string{"Subject: lifeboat: backup of project/shop failed on h1", "error: hook pre exited 1", "job: j1"} {
		if !strings.Contains(m.Data, want) {
			t.Fatalf("mail lacks %q:\n%s", want, m.Data)
		}
	}
}

func TestRouterRoutesAndEvents(t *testing.T) {
	rec := newRecorder(t)
	url := func(p string) string { return "generic://" + rec.hostPort() + "/" + p + "?disabletls=yes" }
	r, err := NewRouter([]Target{
		{Name: "ops", URL: url("ops")},                                         // failures and anomalies
		{Name: "news", URL: url("news"), Events: []string{"success", "drill"}}, // all is well
		{Name: "team", URL: url("team"), Events: []string{"failure"}},
	}, []string{"ops"})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		ev     Event
		routes []string
		want   []string
	}{
		{failed, nil, []string{"/ops"}},                       // the default route
		{failed, []string{"team", "news"}, []string{"/team"}}, // the label's routes, filtered by events
		{failed, []string{None}, nil},                         // notifications off
		{Event{Event: BackupSucceeded, Kind: "backup"}, []string{"ops", "news"}, []string{"/news"}},
		{Event{Event: JobFailed, Kind: "drill"}, []string{"news", "team"}, []string{"/news", "/team"}}, // a failed drill is both
		{Event{Event: DrillPassed, Kind: "drill"}, []string{"team", "news"}, []string{"/news"}},
		{Event{Event: PointSuspect, Kind: "backup"}, nil, []string{"/ops"}},
	}
	for i, c := range cases {
		before := len(rec.requests())
		if err := r.Send(c.ev, c.routes); err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, q := range rec.requests()[before:] {
			paths = append(paths, q.Path)
		}
		if strings.Join(paths, " ") != strings.Join(c.want, " ") && !(len(paths) == 2 && len(c.want) == 2 && paths[0] == c.want[1]) {
			t.Errorf("case %d (%s to %v): sent to %v, want %v", i, c.ev.Event, c.routes, paths, c.want)
		}
	}
}

func TestRouterBadConfig(t *testing.T) {
	for _, c := range []struct {
		targets  []Target
		defaults []string
		want     string
	}{
		{[]Target{{Name: "a b", URL: "ntfy://x/y"}}, nil, "a word without commas"},
		{[]Target{{Name: "a", URL: "nope"}}, nil, "a shoutrrr URL"},
		{[]Target{{Name: "a", URL: "ntfy://x/y", Events: []string{"boom"}}}, nil, `unknown event "boom"`},
		{[]Target{{Name: "a", URL: "ntfy://x/y"}, {Name: "a", URL: "ntfy://x/z"}}, nil, "used twice"},
		{[]Target{{Name: "a", URL: "ntfy://x/y"}}, []string{"b"}, `"b", which is no target`},
		{[]Target{{Name: "a", URL: "nosuchservice://tok3n@x/y"}}, nil, "nosuchservice://x/…"},
	} {
		_, err := NewRouter(c.targets, c.defaults)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: want an error with %q, got %v", c.targets, c.want, err)
		}
		if err != nil && strings.Contains(err.Error(), "tok3n") {
			t.Errorf("error shows the URL's secret: %v", err)
		}
	}
}

func TestRouterErrorHidesSecrets(t *testing.T) {
	rec := newRecorder(t)
	rec.Close() // nothing listens: the send fails
	r, err := NewRouter([]Target{
		{Name: "gotify", URL: "gotify://" + rec.hostPort() + "/Asecrettoken123?disabletls=yes"},
		{Name: "ntfy", URL: "ntfy://user:hunter22@" + rec.hostPort() + "/secret-topic?scheme=http"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = r.Send(failed, nil)
	if err == nil {
		t.Fatal("a send to nothing reported delivered")
	}
	for _, s := range []string{"Asecrettoken123", "hunter22", "secret-topic"} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("error shows %q: %v", s, err)
		}
	}
	if !strings.Contains(err.Error(), "notify gotify (gotify://"+rec.hostPort()+"/…)") {
		t.Fatalf("error does not name the target: %v", err)
	}
}

func TestShown(t *testing.T) {
	for raw, want := range map[string]string{
		"https://hc-ping.com/0f3c1a2e-uuid":     "https://hc-ping.com/…",
		"https://hc-ping.com/":                  "https://hc-ping.com",
		"telegram://123:tok@telegram?chats=@x":  "telegram://telegram/…",
		"smtp://u:p@mail.example:587/?to=a@b.c": "smtp://mail.example:587/…",
		"::not a url":                           "(unparsable URL)",
	} {
		if got := Shown(raw); got != want {
			t.Errorf("Shown(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestScrub(t *testing.T) {
	raw := "ntfy://bob:pw1@ntfy.example/api/alerts-7f3a?scheme=http&token=tk-123456"
	err := scrub(errors.New(`Post "https://ntfy.example/api/alerts-7f3a?token=tk-123456": bob:pw1 refused, api says yes`), raw)
	for _, s := range []string{"alerts-7f3a", "tk-123456", "pw1", "bob"} {
		if strings.Contains(err.Error(), s) {
			t.Fatalf("scrubbed error shows %q: %v", s, err)
		}
	}
	if !strings.Contains(err.Error(), "api says yes") {
		t.Fatalf("short words garbled: %v", err)
	}
}
