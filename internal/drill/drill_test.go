package drill

import (
	"strings"
	"testing"
)

func TestTail(t *testing.T) {
	if got := tail("  short\n"); got != "short" {
		t.Fatalf("tail of a short output: %q", got)
	}
	long := "exited 2\n" + strings.Repeat("line of output\n", 500) + "the end"
	got := tail(long)
	if !strings.HasPrefix(got, "exited 2\n…") || !strings.HasSuffix(got, "the end") || len(got) > 2010 {
		t.Fatalf("tail of a long output: %d bytes, %q…%q", len(got), got[:20], got[len(got)-20:])
	}
}

func TestFailed(t *testing.T) {
	r := Result{Checks: []Check{{Name: "restore", Passed: true}, {Name: "start", Container: "c"}}}
	f := r.Failed()
	if len(f) != 1 || f[0].label() != "start (c)" {
		t.Fatalf("failed %+v", f)
	}
}
