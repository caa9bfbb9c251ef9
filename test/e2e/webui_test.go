package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// artifacts is where the browser tests leave their screenshots: CI keeps
// the folder, git ignores it.
func artifacts(t *testing.T) string {
	dir := os.Getenv("LIFEBOAT_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(), "test-artifacts")
	}
	dir = filepath.Join(dir, "webui")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// newBrowser starts Debian's headless Chromium for one test, with the
// flags that keep it off the network, and stops it when the test ends.
func newBrowser(t *testing.T, chromium string, timeout time.Duration) context.Context {
	t.Helper()
	// Not t.TempDir: Chromium's helper processes may still write into
	// its profile for a moment after the browser is killed, and the
	// testing package fails a test whose TempDir it cannot remove.
	profile, err := os.MkdirTemp("", "lb-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(profile), chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true))
	ctx, cancel := chromedp.NewContext(alloc)
	ctx, cancelT := context.WithTimeout(ctx, timeout)
	t.Cleanup(func() {
		cancelT()
		cancel()
		cancelAlloc()
		for range 50 {
			if err = os.RemoveAll(profile); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("Chromium's profile %s is still being written 5 s after the browser ended: %v", profile, err)
	})
	return ctx
}

// TestWebUI drives the web UI in Debian's headless Chromium against a real
// lifeboat serve and Docker daemon: sign in (a wrong token refused), the
// dashboard lists the units, a backup started from it finishes, the point
// is browsed and a file downloaded byte for byte, a volume restored as a
// copy after a dry run shows up in Docker. Every page is shot at 1280 and
// 390 px; the main actions work from the keyboard.
func TestWebUI(t *testing.T) {
	chromium := "/usr/bin/chromium"
	if _, err := os.Stat(chromium); err != nil {
		t.Fatalf("Debian's chromium is needed at %s: run scripts/install-deps", chromium)
	}
	e := newEnvOwnDaemon(t)
	e.d.EnsureImages(t, "busybox")
	e.ok("init")
	e.d.Docker(t, "run", "-d", "--name", "web-app", "--label", "lifeboat.schedule=@daily", "-p", "127.0.0.1:18080:8080", "-v", "webdata:/data", "lifeboat-test/busybox:1", "sleep", "100000")
	e.d.Docker(t, "run", "-d", "--name", "other", "--label", "lifeboat.enable=false", "lifeboat-test/busybox:1", "sleep", "100000")
	payload := make([]byte, 10000)
	rand.Read(payload)
	mp := e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "webdata")
	if err := os.WriteFile(filepath.Join(mp, "hello.bin"), payload, 0o644); err != nil {
		t.Fatal(err)
	}
	e.vars = append(e.vars, "LIFEBOAT_STATE_DIR="+filepath.Join(t.TempDir(), "state"))
	tokenFile := filepath.Join(t.TempDir(), "token")
	token := "webui-token-7f3a9c2e5b1d4f6a"
	os.WriteFile(tokenFile, []byte(token), 0o600)
	m := testutil.StartMinIO(t)
	m.LockedBucket("locked")
	cfg := filepath.Join(t.TempDir(), "lifeboat.yaml")
	os.WriteFile(cfg, []byte("offsite:\n  to: s3://locked/web\n  schedule: never\n  lock: {mode: compliance, period: 7d}\n"), 0o600)
	p := e.serve(t, freePort(t), tokenFile, append(m.Env(), "LIFEBOAT_CONFIG="+cfg)...)
	shots := artifacts(t)

	ctx := newBrowser(t, chromium, 3*time.Minute)

	run := func(what string, actions ...chromedp.Action) {
		t.Helper()
		if err := chromedp.Run(ctx, actions...); err != nil {
			var html string
			chromedp.Run(ctx, chromedp.OuterHTML("main", &html))
			t.Fatalf("%s: %v\npage: %s\ndaemon log:\n%s", what, err, html, p.logs())
		}
	}
	shot := func(name string) {
		t.Helper()
		for _, w := range []struct {
			label  string
			width  int64
			height int64
			mobile bool
		}{{"1280", 1280, 900, false}, {"390", 390, 844, true}} {
			var buf []byte
			var overflow bool
			run("screenshot "+name, emulation.SetDeviceMetricsOverride(w.width, w.height, 1, w.mobile), chromedp.Sleep(150*time.Millisecond),
				chromedp.Evaluate(`document.documentElement.scrollWidth > window.innerWidth + 1`, &overflow),
				chromedp.FullScreenshot(&buf, 100))
			if overflow {
				t.Errorf("%s at %s px scrolls sideways", name, w.label)
			}
			if err := os.WriteFile(filepath.Join(shots, name+"-"+w.label+".png"), buf, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		run("back to desktop", emulation.SetDeviceMetricsOverride(1280, 900, 1, false))
	}
	textOf := func(sel string) string {
		var s string
		run("read "+sel, chromedp.Text(sel, &s, chromedp.ByQuery))
		return s
	}
	waitText := func(sel, want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !strings.Contains(textOf(sel), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s never showed %q; it shows %q", sel, want, textOf(sel))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}

	// Sign in, from the keyboard: type, Enter.
	run("open", chromedp.Navigate(p.url+"/"), chromedp.WaitVisible("#token", chromedp.ByQuery))
	shot("login")
	run("wrong token", chromedp.SendKeys("#token", "not-the-token"+kb.Enter, chromedp.ByQuery))
	waitText("main", "That token is not right.")
	var inURL string
	run("type token", chromedp.Evaluate(`document.querySelector("#token").value = ""`, nil), chromedp.SendKeys("#token", token+kb.Enter, chromedp.ByQuery),
		chromedp.WaitVisible("#units", chromedp.ByQuery), chromedp.Location(&inURL))
	if strings.Contains(inURL, token) {
		t.Fatal("the token is in the URL")
	}
	waitText("#units", "container/web-app")
	if !strings.Contains(textOf("#units"), "container/other") || !strings.Contains(textOf("#units"), "unprotected") {
		t.Fatalf("the dashboard does not list the unprotected unit: %s", textOf("#units"))
	}
	var scriptSees string
	run("cookie", chromedp.Evaluate(`document.cookie`, &scriptSees))
	if strings.Contains(scriptSees, token) {
		t.Fatal("page scripts can read the token cookie")
	}
	shot("dashboard")

	// Start a backup from the keyboard: Tab to its button, Enter.
	var focused string
	for i := 0; i < 40 && focused != "Back up container/web-app now"; i++ {
		run("tab", chromedp.KeyEvent(kb.Tab), chromedp.Evaluate(`document.activeElement.getAttribute("aria-label") || ""`, &focused))
	}
	if focused != "Back up container/web-app now" {
		t.Fatalf("Tab never reached the backup button (last: %q)", focused)
	}
	run("enter", chromedp.KeyEvent(kb.Enter))
	run("job page", chromedp.WaitVisible("#log", chromedp.ByQuery))
	waitText("main", "succeeded")
	shot("job")

	// A locked offsite copy of the point: the timeline says until when.
	var rj apiJob
	if code := p.api("POST", "/api/v1/jobs", map[string]string{"kind": "replicate"}, &rj); code != 202 {
		t.Fatalf("POST replicate job: %d %+v", code, rj)
	}
	if rj = p.waitJob(rj.ID, 2*time.Minute); rj.State != "succeeded" {
		t.Fatalf("the daemon's locked replicate: %+v\n%s", rj, p.logs())
	}
	run("unit page", chromedp.Navigate(p.url+"/#/unit/"+strings.ReplaceAll("container/web-app", "/", "%2F")), chromedp.WaitVisible("main table", chromedp.ByQuery))
	if until := textOf("main table tbody"); !strings.Contains(until, "locked until") {
		t.Fatalf("the timeline does not show the offsite lock of the replicated point: %s", until)
	}
	shot("timeline")
	var pointURL string
	run("open the point", chromedp.Click("main table a", chromedp.ByQuery), chromedp.WaitVisible("#files", chromedp.ByQuery), chromedp.Location(&pointURL))
	shot("point")
	run("volumes", chromedp.Click(`//table[@id="files"]//a[text()="volumes/"]`, chromedp.BySearch), chromedp.WaitVisible(`//a[text()="webdata/"]`, chromedp.BySearch),
		chromedp.Click(`//a[text()="webdata/"]`, chromedp.BySearch), chromedp.WaitVisible(`[aria-label="Download hello.bin"]`, chromedp.ByQuery))
	shot("browse")
	var got string
	run("download", chromedp.Evaluate(`(async () => {
		const r = await fetch(document.querySelector('[aria-label="Download hello.bin"]').href);
		const b = new Uint8Array(await r.arrayBuffer());
		let s = ""; for (const x of b) s += String.fromCharCode(x); return btoa(s);
	})()`, &got, func(p *runtime.EvaluateParams) *runtime.EvaluateParams { return p.WithAwaitPromise(true) }))
	if got != base64.StdEncoding.EncodeToString(payload) {
		t.Fatalf("the downloaded file differs (%d base64 bytes)", len(got))
	}

	// A container's captured configuration.
	run("config", chromedp.Navigate(pointURL), chromedp.WaitVisible("#files", chromedp.ByQuery))
	run("containers", chromedp.Click(`//table[@id="files"]//a[text()="containers/"]`, chromedp.BySearch), chromedp.WaitVisible(`//a[text()="web-app/"]`, chromedp.BySearch),
		chromedp.Click(`//a[text()="web-app/"]`, chromedp.BySearch), chromedp.WaitVisible(`[aria-label="View config.json"]`, chromedp.ByQuery),
		chromedp.Click(`[aria-label="View config.json"]`, chromedp.ByQuery), chromedp.WaitVisible("#viewer pre", chromedp.ByQuery))
	waitText("#viewer pre", "host_config")
	shot("config")

	// A copy of the whole unit beside the original must move its host
	// ports: the form's ports choice reaches the plan.
	run("unit copy plan", chromedp.SetValue("#what", "unit", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("#what").dispatchEvent(new Event("change"))`, nil),
		chromedp.SendKeys("#as", "web-copy", chromedp.ByQuery),
		chromedp.SetValue("#ports", "shift", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("#ports").dispatchEvent(new Event("change"))`, nil),
		chromedp.SetValue("#shift", "1000", chromedp.ByQuery), chromedp.Click("#dryrun", chromedp.ByQuery))
	waitText("#plan", "18080→19080/tcp")
	shot("restore-ports")
	run("clear as", chromedp.Evaluate(`document.querySelector("#as").value = ""`, nil))

	// Restore the volume as a copy: dry run first, then for real.
	run("restore form", chromedp.SetValue("#what", "volume:webdata", chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector("#what").dispatchEvent(new Event("change"))`, nil),
		chromedp.SendKeys("#as", "webdata-copy", chromedp.ByQuery), chromedp.Click("#dryrun", chromedp.ByQuery))
	waitText("#plan", "create volume webdata-copy")
	shot("restore-plan")
	if _, err := e.d.DockerErr("volume", "inspect", "webdata-copy"); err == nil {
		t.Fatal("the dry run created the volume")
	}
	run("restore", chromedp.Click("#restore", chromedp.ByQuery), chromedp.WaitVisible("#log", chromedp.ByQuery))
	waitText("main", "succeeded")
	copyMP := e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "webdata-copy")
	if b, err := os.ReadFile(filepath.Join(copyMP, "hello.bin")); err != nil || string(b) != string(payload) {
		t.Fatalf("the restored copy: %v", err)
	}

	run("jobs", chromedp.Navigate(p.url+"/#/jobs"), chromedp.WaitVisible("#history", chromedp.ByQuery))
	waitText("#history", "restore")
	shot("jobs")
	t.Logf("screenshots in %s", shots)
}
