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

func TestPrintFormatted(t *testing.T) {
	type item struct {
		Unit  string
		Names []string
	}
	items := []item{{"project/shop", []string{"a", "b"}}, {"volume/v", nil}}
	var b bytes.Buffer
	if err := printFormatted(&b, `{{.Unit}}: {{join .Names ","}}`, items); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "project/shop: a,b\nvolume/v: \n"; got != want {
		t.Fatalf("template: %q, want %q", got, want)
	}
	b.Reset()
	if err := printFormatted(&b, "json", items); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), `{"Unit":"project/shop","Names":["a","b"]}`+"\n"+`{"Unit":"volume/v","Names":null}`+"\n"; got != want {
		t.Fatalf("json: %q, want %q", got, want)
	}
	b.Reset()
	if err := printFormatted(&b, "{{.Nope}}", items); err == nil || b.Len() != 0 {
		t.Fatalf("a field the items lack: %v, printed %q", err, b.String())
	}
}
