package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/drill"
)

func TestPrintDrill(t *testing.T) {
	var b bytes.Buffer
	printDrill(&b, drill.Result{Point: "0123456789abcdef", Unit: "project/shop", Sandbox: "lbdrill-a1b2c3", DurationMS: 9000, Checks: []drill.Check{
		{Name: "restore", Passed: true, Output: "3 containers", DurationMS: 1200},
		{Name: "start", Container: "shop-app-1", Output: "it is unhealthy\nlast log lines:\nboom", DurationMS: 4000},
	}})
	out := b.String()
	for _, want := range []string{"point 0123456789ab", "FAILED", "RTO none", "start    shop-app-1  FAILED  4s",
		"start shop-app-1 failed:\n  it is unhealthy\n  last log lines:\n  boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
