package e2e

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestTimelineImagesAndForget: --images commit,save tags a timeline image
// per point; forget removes the points a policy does not keep, with their
// tags, and never the newest.
func TestTimelineImagesAndForget(t *testing.T) {
	e := newEnv(t)
	e.d.EnsureImages(t, "busybox")
	e.d.Docker(t, "run", "-d", "--name", "tl", "lifeboat-test/busybox:1", "sh", "-c", "date > /etc/started; exec sleep 100000")
	e.ok("init")
	var ids []string
	for i := 0; i < 3; i++ {
		if i > 0 {
			time.Sleep(1100 * time.Millisecond) // timeline tags name the second
		}
		e.d.Docker(t, "exec", "tl", "sh", "-c", "date >> /etc/history")
		ids = append(ids, parseSummaries(t, e.ok("backup", "container/tl", "--images", "commit,save", "--json").stdout)[0].ID)
	}
	tags := func() []string {
		return strings.Fields(e.d.Docker(t, "images", "--format", "{{.Repository}}:{{.Tag}}", "lifeboat/tl/tl"))
	}
	if got := tags(); len(got) != 3 {
		t.Fatalf("want 3 timeline tags, got %v", got)
	}
	for _, tag := range tags() {
		if !regexpTimeline.MatchString(tag) {
			t.Errorf("timeline tag %q is not lifeboat/tl/tl:YYYYMMDDThhmmssZ", tag)
		}
	}

	r := e.ok("forget", "container/tl", "--keep-last", "1", "--dry-run", "--json")
	var verdicts []struct {
		ID   string `json:"id"`
		Keep bool   `json:"keep"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &verdicts); err != nil || len(verdicts) != 3 || !verdicts[0].Keep || verdicts[1].Keep || verdicts[2].Keep {
		t.Fatalf("dry run verdicts: %s (%v)", r.stdout, err)
	}
	if n := len(e.list(t)); n != 3 || len(tags()) != 3 {
		t.Fatalf("--dry-run forgot something: %d points, tags %v", n, tags())
	}

	e.ok("forget", "container/tl", "--keep-last", "1")
	left := e.list(t)
	if len(left) != 1 || left[0].ID != ids[2] {
		t.Fatalf("after forget: %+v, want only %s", left, ids[2])
	}
	if got := tags(); len(got) != 1 {
		t.Errorf("forgotten points' timeline tags remain: %v", got)
	}
	// The kept point still restores, its images included.
	e.d.Docker(t, "rm", "-f", "tl")
	e.ok("restore", ids[2])
	if out := e.d.Docker(t, "exec", "tl", "sh", "-c", "wc -l < /etc/history"); strings.TrimSpace(out) != "3" {
		t.Errorf("restored history has %q lines, want 3", out)
	}
	if r := e.run(nil, "forget", "container/tl"); r.code != 1 || !strings.Contains(r.stderr, "--keep-") {
		t.Errorf("forget without a policy: exit %d %q", r.code, r.stderr)
	}
	e.d.Docker(t, "rm", "-f", "tl")
}

var regexpTimeline = regexp.MustCompile(`^lifeboat/tl/tl:\d{8}T\d{6}Z$`)
