package e2e

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// TestServeDrills: lifeboat serve drills a unit on the schedule of its
// lifeboat.drill label, the API and the metrics say it passed with its
// RTO, the web UI shows the point as proven (screenshot), and nothing of
// the sandboxes is left once the daemon has stopped and the next command
// has run.
func TestServeDrills(t *testing.T) {
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Debian's chromium is needed at %s: run scripts/install-deps", chromium)
	}
	e := newEnvOwnDaemon(t)
	e.d.EnsureImages(t, "busybox")
	e.ok("init")
	before := countObjects(t, e)
	e.d.Docker(t, "volume", "create", "drillweb")
	mp := e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "drillweb")
	if err := os.WriteFile(filepath.Join(mp, "index.html"), []byte("<h1>shop</h1>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.d.Docker(t, "run", "-d", "--name", "drill-web", "--label", "lifeboat.drill=@every 4s", "--label", "lifeboat.drill.http=8080/",
		"-v", "drillweb:/www", "lifeboat-test/busybox:1", "httpd", "-f", "-p", "8080", "-h", "/www")
	before.containers++
	before.volumes++
	original := startedState(t, e, "drill-web")
	e.vars = append(e.vars, "LIFEBOAT_STATE_DIR="+filepath.Join(t.TempDir(), "state"))
	tokenFile := filepath.Join(t.TempDir(), "token")
	token := "drill-token-5c1e9a7b3d2f4e6a"
	os.WriteFile(tokenFile, []byte(token), 0o600)
	p := e.serve(t, freePort(t), tokenFile)

	var j apiJob
	if code := p.api("POST", "/api/v1/jobs", map[string]string{"kind": "backup", "unit": "container/drill-web"}, &j); code != 202 {
		t.Fatalf("backup: %d", code)
	}
	if j = p.waitJob(j.ID, 2*time.Minute); j.State != "succeeded" {
		t.Fatalf("backup %s: %s", j.State, j.Error)
	}
	drillJob := waitScheduledDrill(t, p)
	t.Logf("scheduled drill %s of %s: %s", drillJob.ID, drillJob.Point, drillJob.State)

	var units []struct {
		Unit          string `json:"unit"`
		DrillSchedule string `json:"drill_schedule"`
		LastDrill     *struct {
			Passed bool  `json:"passed"`
			RTOMS  int64 `json:"rto_ms"`
		} `json:"last_drill"`
	}
	p.api("GET", "/api/v1/units", nil, &units)
	var rto int64
	for _, u := range units {
		if u.Unit == "container/drill-web" {
			if u.LastDrill == nil || !u.LastDrill.Passed || u.LastDrill.RTOMS <= 0 || u.DrillSchedule != "@every 4s" {
				t.Fatalf("the unit's drill as the API shows it: %+v", u)
			}
			rto = u.LastDrill.RTOMS
		}
	}
	metrics := p.metrics(t)
	for _, want := range []string{`lifeboat_drill_last_passed{unit="container/drill-web"} 1`, `lifeboat_drill_rto_seconds{unit="container/drill-web"}`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	t.Logf("drill RTO %d ms, as the API reports it", rto)

	shots := artifacts(t)
	ctx := newBrowser(t, chromium, 2*time.Minute)
	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			var html string
			chromedp.Run(ctx, chromedp.OuterHTML("main", &html))
			t.Fatalf("%s: %v\npage: %s", what, err, html)
		}
	}
	shot := func(name string) {
		t.Helper()
		var buf []byte
		run("screenshot "+name, emulation.SetDeviceMetricsOverride(1280, 900, 1, false), chromedp.Sleep(150*time.Millisecond), chromedp.FullScreenshot(&buf, 100))
		if err := os.WriteFile(filepath.Join(shots, name+"-1280.png"), buf, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var proof, checks string
	run("sign in", chromedp.Navigate(p.url+"/"), chromedp.WaitVisible("#token", chromedp.ByQuery),
		chromedp.SendKeys("#token", token+kb.Enter, chromedp.ByQuery), chromedp.WaitVisible("#units", chromedp.ByQuery))
	run("unit page", chromedp.Navigate(p.url+"/#/unit/container%2Fdrill-web"), chromedp.WaitVisible(".badge.proven", chromedp.ByQuery),
		chromedp.Text(".badge.proven", &proof, chromedp.ByQuery))
	if !strings.Contains(proof, "proven") || !strings.Contains(proof, "RTO") {
		t.Fatalf("the point's proof reads %q", proof)
	}
	shot("drill-proven")
	run("drill job", chromedp.Navigate(p.url+"/#/job/"+drillJob.ID), chromedp.WaitVisible("#checks", chromedp.ByQuery),
		chromedp.Text("#checks", &checks, chromedp.ByQuery))
	if !strings.Contains(checks, "http 8080/") {
		t.Fatalf("the drill's checks read %q", checks)
	}
	var page string
	run("job page text", chromedp.Text("main", &page, chromedp.ByQuery))
	if strings.Contains(page, "null") {
		t.Errorf("the job page prints null: %q", page)
	}
	shot("drill-job")
	t.Logf("the UI shows %q; screenshots in %s", proof, shots)

	// Stop the daemon (a drill may be running: it is cancelled), then the
	// next command settles what a cancelled drill could not remove.
	p.cmd.Process.Signal(os.Interrupt)
	p.cmd.Wait()
	e.ok("snapshots")
	if got := startedState(t, e, "drill-web"); got != original {
		t.Errorf("the original changed: %s, was %s", got, original)
	}
	after := countObjects(t, e)
	if after != before {
		t.Fatalf("left behind: %+v, want %+v\n%s", after, before, e.d.Docker(t, "ps", "-a"))
	}
	t.Logf("serve drills: 0 containers, networks and volumes left (%+v)", after)
}

// waitScheduledDrill waits for the daemon's first scheduled drill to end,
// and insists it passed.
func waitScheduledDrill(t *testing.T, p *daemonProc) apiJob {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		var jobs []apiJob
		p.api("GET", "/api/v1/jobs", nil, &jobs)
		for _, j := range jobs {
			if j.Kind != "drill" || j.Trigger != "schedule" {
				continue
			}
			switch j.State {
			case "succeeded":
				return j
			case "failed", "cancelled":
				full := p.waitJob(j.ID, time.Second)
				t.Fatalf("scheduled drill %s: %s\n%s\nresult: %s", j.State, j.Error, strings.Join(full.Log, "\n"), full.Result)
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("no scheduled drill succeeded in 3 minutes; daemon log:\n%s", p.logs())
	return apiJob{}
}

// metrics reads /metrics with the token.
func (p *daemonProc) metrics(t *testing.T) string {
	t.Helper()
	req, _ := http.NewRequest("GET", p.url+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}
