package consistency

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// fakeRedisCLI answers like redis-cli: BGSAVE is refused while a save
// runs (the first call), then starts one that INFO reports in progress
// twice; the last status is $LB_STATUS. Each call is logged with the
// password it was given.
const fakeRedisCLI = `#!/bin/sh
d=$(dirname "$0"); echo "$* auth=${REDISCLI_AUTH:-}" >> "$d/calls"
n=$(grep -c . "$d/calls")
case "$1" in
  BGSAVE) if [ "$n" -eq 1 ]; then echo "ERR Background save already in progress"; else echo "Background saving started"; fi ;;
  INFO) if [ "$(grep -c INFO "$d/calls")" -le 2 ]; then p=1; else p=0; fi
        printf 'rdb_bgsave_in_progress:%s\r\nrdb_last_bgsave_status:%s\r\n' "$p" "$LB_STATUS" ;;
esac
`

func runRedisSave(t *testing.T, status string) (string, error) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "redis-cli"), []byte(fakeRedisCLI), 0o755); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(RedisSave()[0], RedisSave()[1:]...)
	cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "REDIS_PASSWORD_FILE=" + pw, "LB_STATUS=" + status}
	out, err := cmd.CombinedOutput()
	calls, _ := os.ReadFile(filepath.Join(dir, "calls"))
	return string(out) + "\ncalls:\n" + string(calls), err
}

func TestRedisSaveWaits(t *testing.T) {
	out, err := runRedisSave(t, "ok")
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	// Refused, retried, started; in progress twice, then done.
	want := "BGSAVE auth=s3cret\nBGSAVE auth=s3cret\nINFO persistence auth=s3cret\nINFO persistence auth=s3cret\nINFO persistence auth=s3cret\n"
	if !strings.HasSuffix(out, want) {
		t.Fatalf("calls: %s", out)
	}
	if strings.Contains(strings.Join(RedisSave(), " "), "s3cret") {
		t.Fatal("the password is in the command line")
	}
}

func TestRedisSaveFails(t *testing.T) {
	out, err := runRedisSave(t, "err")
	if err == nil || !strings.Contains(out, "the background save failed") {
		t.Fatalf("a failed save passed: %v %s", err, out)
	}
}

// fakeExec records what SaveFiles runs where.
type fakeExec struct {
	ran  []string
	exit int
}

func (f *fakeExec) Exec(_ context.Context, id string, spec engine.ExecSpec, _ io.Reader, _, stderr io.Writer) (engine.ExecResult, error) {
	f.ran = append(f.ran, id)
	if f.exit != 0 {
		io.WriteString(stderr, "NOAUTH Authentication required.")
	}
	return engine.ExecResult{ExitCode: f.exit}, nil
}

func TestSaveFilesOnlyRunningRedis(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	cs := []engine.Container{
		{ID: "r1", Name: "cache", Image: "redis:7", State: "running"},
		{ID: "r2", Name: "frozen", Image: "redis:7", State: "paused"},
		{ID: "r3", Name: "gone", Image: "redis:7", State: "exited"},
		{ID: "p1", Name: "db", Image: "postgres:16", State: "running"},
		{ID: "r4", Name: "optout", Image: "redis:7", State: "running", Labels: map[string]string{LabelDump: "none"}},
		{ID: "r5", Name: "labelled", Image: "myapp:1", State: "running", Labels: map[string]string{LabelDump: "redis"}},
	}
	f := &fakeExec{}
	if err := SaveFiles(t.Context(), f, cs, log); err != nil {
		t.Fatal(err)
	}
	if strings.Join(f.ran, ",") != "r1,r5" {
		t.Fatalf("saved in %v, want r1,r5", f.ran)
	}
	f = &fakeExec{exit: 1}
	err := SaveFiles(t.Context(), f, cs, log)
	if err == nil || !strings.Contains(err.Error(), "cache") || !strings.Contains(err.Error(), "NOAUTH") {
		t.Fatalf("a failed save: %v", err)
	}
}
