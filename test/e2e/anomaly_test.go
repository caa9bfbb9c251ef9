package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// anomalyPoint is a restore point as backup --json and snapshots --json
// print it, with the anomaly guard's verdict.
type anomalyPoint struct {
	ID         string   `json:"id"`
	Unit       string   `json:"unit"`
	Files      int64    `json:"files"`
	Bytes      int64    `json:"bytes"`
	BytesAdded int64    `json:"bytes_added"`
	Suspect    bool     `json:"suspect"`
	Anomalies  []string `json:"anomalies"`
	Acked      bool     `json:"acked"`
}

type forgetVerdict struct {
	anomalyPoint
	Keep    bool     `json:"keep"`
	Reasons []string `json:"reasons"`
}

// writeFiles fills dir with n files of size bytes each: hex text, which
// compresses as ordinary data does.
func writeFiles(t *testing.T, dir string, n, size int) {
	t.Helper()
	for i := range n {
		b := make([]byte, size/2)
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("doc%03d.txt", i)), []byte(hex.EncodeToString(b)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// encrypt overwrites every file under dir with random bytes of its size,
// as ransomware encrypting in place does.
func encrypt(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.IsDir() {
			encrypt(t, filepath.Join(dir, e.Name()))
			continue
		}
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, info.Size())
		rand.Read(b)
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func (e *env) anomalyBackup(t *testing.T, unit string) (anomalyPoint, result) {
	t.Helper()
	r := e.ok("backup", unit, "--json")
	var p anomalyPoint
	if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &p); err != nil || p.ID == "" {
		t.Fatalf("backup %s --json: %q: %v", unit, r.stdout, err)
	}
	t.Logf("point %s: %d files, %d bytes, %d stored anew, suspect %v %q", p.ID[:12], p.Files, p.Bytes, p.BytesAdded, p.Suspect, p.Anomalies)
	return p, r
}

// steadyHistory backs up unit four times with a small change between
// backups: enough history for the guard to judge, and each point normal.
func (e *env) steadyHistory(t *testing.T, unit, dir string) []anomalyPoint {
	t.Helper()
	var ps []anomalyPoint
	for i := range 4 {
		if i > 0 {
			writeFiles(t, filepath.Join(dir, "new"), 1, 4<<10) // a changed file
		}
		p, r := e.anomalyBackup(t, unit)
		if p.Suspect || strings.Contains(r.stderr, "suspect") {
			t.Fatalf("normal backup %d marked suspect: %q\n%s", i, p.Anomalies, r.stderr)
		}
		ps = append(ps, p)
	}
	return ps
}

func (e *env) points(t *testing.T, unit string) map[string]anomalyPoint {
	t.Helper()
	var ps []anomalyPoint
	if err := json.Unmarshal([]byte(e.ok("snapshots", unit, "--json").stdout), &ps); err != nil {
		t.Fatalf("snapshots --json: %v", err)
	}
	out := map[string]anomalyPoint{}
	for _, p := range ps {
		out[p.ID] = p
	}
	return out
}

// TestAnomalyRansomware: a unit whose files are all rewritten with random
// bytes gets a suspect point (the backup still succeeds); with retention
// last=1 the good point before it survives forget until the anomaly is
// acknowledged, and then goes.
func TestAnomalyRansomware(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	const unit = "volume/anomaly-docs"
	e.d.Docker(t, "volume", "create", "--label", "lifeboat.retention=last=1", "anomaly-docs")
	defer e.d.Docker(t, "volume", "rm", "-f", "anomaly-docs")
	dir := e.d.Docker(t, "volume", "inspect", "-f", "{{.Mountpoint}}", "anomaly-docs")
	if err := os.MkdirAll(filepath.Join(dir, "new"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, 200, 20<<10) // 4 MB
	good := e.steadyHistory(t, unit, dir)
	lastGood := good[len(good)-1]

	encrypt(t, dir)
	bad, r := e.anomalyBackup(t, unit)
	if !bad.Suspect || len(bad.Anomalies) == 0 || !strings.Contains(strings.Join(bad.Anomalies, ";"), "stored anew") {
		t.Fatalf("encrypted in place, the point is not suspect for its churn: %+v", bad)
	}
	if !strings.Contains(r.stderr, "is suspect") || !strings.Contains(r.stderr, "lifeboat ack "+bad.ID) {
		t.Fatalf("backup of a suspect point warns nothing on stderr: %q", r.stderr)
	}
	t.Logf("findings: %q", bad.Anomalies)
	t.Logf("stderr: %s", strings.TrimSpace(r.stderr))
	text := e.ok("snapshots", unit).stdout
	if !strings.Contains(text, "SUSPECT") || !strings.Contains(text, "lifeboat ack "+bad.ID) {
		t.Fatalf("snapshots does not mark the suspect point:\n%s", text)
	}
	t.Logf("snapshots:\n%s", text)

	dry := e.ok("forget", "--dry-run").stdout
	if !strings.Contains(dry, "kept: last good point before unacknowledged anomaly") {
		t.Fatalf("forget does not say why it keeps the good point:\n%s", dry)
	}
	var vs []forgetVerdict
	if err := json.Unmarshal([]byte(e.ok("forget", "--json").stdout), &vs); err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		t.Logf("forget: %s keep=%v %q", v.ID[:12], v.Keep, v.Reasons)
	}
	left := e.points(t, unit)
	if len(left) != 2 || !left[bad.ID].Suspect || left[lastGood.ID].ID == "" {
		t.Fatalf("after forget with last=1 and an unacknowledged anomaly, want the suspect point and the last good one, got %+v", left)
	}

	ack := e.ok("ack", bad.ID[:10], "--json")
	var acked struct {
		anomalyPoint
		Already bool `json:"already_acked"`
	}
	if err := json.Unmarshal([]byte(ack.stdout), &acked); err != nil || !acked.Acked || acked.Already || acked.ID != bad.ID {
		t.Fatalf("ack --json: %q %v", ack.stdout, err)
	}
	if r := e.run(nil, "ack", lastGood.ID); r.code != 1 || !strings.Contains(r.stderr, "not suspect") {
		t.Fatalf("ack of a good point: exit %d, %q", r.code, r.stderr)
	}
	e.ok("forget")
	left = e.points(t, unit)
	if len(left) != 1 || !left[bad.ID].Acked {
		t.Fatalf("after ack, forget with last=1 should keep only the newest point, got %+v", left)
	}
}

// TestAnomalyShrink: deleting most of a unit's files gives a suspect
// point that names the shrink.
func TestAnomalyShrink(t *testing.T) {
	e := newEnv(t)
	e.ok("init")
	const unit = "volume/anomaly-shrink"
	dir := e.volume("anomaly-shrink")
	defer e.d.Docker(t, "volume", "rm", "-f", "anomaly-shrink")
	if err := os.MkdirAll(filepath.Join(dir, "new"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, 100, 20<<10)
	e.steadyHistory(t, unit, dir)
	for i := range 90 {
		if err := os.Remove(filepath.Join(dir, fmt.Sprintf("doc%03d.txt", i))); err != nil {
			t.Fatal(err)
		}
	}
	p, _ := e.anomalyBackup(t, unit)
	all := strings.Join(p.Anomalies, ";")
	if !p.Suspect || !strings.Contains(all, "files shrank") || !strings.Contains(all, "bytes shrank") {
		t.Fatalf("90%% of the files deleted, the point is not suspect for it: %+v", p)
	}
	t.Logf("findings: %q", p.Anomalies)
}

// TestAnomalyDumpShrinks: the dumps' sizes are recorded with each point,
// and a database emptied since the last backups gives a suspect point
// that names its dump.
func TestAnomalyDumpShrinks(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "all")
	e.ok("init")
	e.d.Docker(t, "run", "-d", "--name", "anomaly-redis", "lifeboat-test/redis:7")
	t.Cleanup(func() { e.d.DockerErr("rm", "-f", "-v", "anomaly-redis") })
	waitForLong(t, func() bool {
		_, err := e.d.DockerErr("exec", "anomaly-redis", "sh", "-c", "redis-cli PING | grep -q PONG")
		return err == nil
	})
	fill := func(from, to int) {
		e.d.Docker(t, "exec", "anomaly-redis", "sh", "-c",
			fmt.Sprintf(`seq %d %d | sed 's/.*/SET key:& value-of-key-&-padded-to-be-a-little-longer/' | redis-cli >/dev/null`, from, to))
	}
	fill(1, 20000)
	const unit = "container/anomaly-redis"
	var dumps map[string]int64
	for i := range 4 {
		fill(20000+i*10, 20000+i*10+9)
		p, _ := e.anomalyBackup(t, unit)
		if p.Suspect {
			t.Fatalf("normal backup %d marked suspect: %q", i, p.Anomalies)
		}
		dumps = e.pointDumps(t, unit, p.ID)
	}
	if dumps["anomaly-redis/dump.rdb"] < 100<<10 {
		t.Fatalf("the point does not record its dump's size: %v", dumps)
	}
	e.d.Docker(t, "exec", "anomaly-redis", "redis-cli", "FLUSHALL")
	p, r := e.anomalyBackup(t, unit)
	if !p.Suspect || !strings.Contains(strings.Join(p.Anomalies, ";"), "dump anomaly-redis/dump.rdb shrank") {
		t.Fatalf("database emptied, the point is not suspect for its dump: %+v\n%s", p, r.stderr)
	}
	t.Logf("dumps before: %v; after: %v; findings: %q", dumps, e.pointDumps(t, unit, p.ID), p.Anomalies)
}

func (e *env) pointDumps(t *testing.T, unit, id string) map[string]int64 {
	t.Helper()
	var ps []struct {
		ID    string           `json:"id"`
		Dumps map[string]int64 `json:"dumps"`
	}
	if err := json.Unmarshal([]byte(e.ok("snapshots", unit, "--json").stdout), &ps); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		if p.ID == id {
			return p.Dumps
		}
	}
	t.Fatalf("point %s not listed", id)
	return nil
}
