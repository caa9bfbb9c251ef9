package backup

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestVisible(t *testing.T) {
	dir := t.TempDir()
	if err := visible("volume \"v\"", dir); err != nil {
		t.Fatalf("an existing directory: %v", err)
	}
	if err := visible("the writable layer of c", ""); err != nil {
		t.Fatalf("no writable layer: %v", err)
	}
	missing := filepath.Join(dir, "not-mounted", "_data")
	err := visible("volume \"v\"", missing)
	if err == nil {
		t.Fatal("a path missing here passed")
	}
	for _, want := range []string{`volume "v"`, missing + " does not exist", "-v " + missing + ":" + missing} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
}
