package backup

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

func TestVisible(t *testing.T) {
	pass := func(string) error { return nil }
	dir := t.TempDir()
	if err := visible(pass, "volume \"v\"", dir); err != nil {
		t.Fatalf("an existing directory: %v", err)
	}
	if err := visible(pass, "the writable layer of c", ""); err != nil {
		t.Fatalf("no writable layer: %v", err)
	}
	missing := filepath.Join(dir, "not-mounted", "_data")
	err := visible(pass, "volume \"v\"", missing)
	if err == nil {
		t.Fatal("a path missing here passed")
	}
	for _, want := range []string{`volume "v"`, missing + " does not exist", "-v " + missing + ":" + missing} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error %q lacks %q", err, want)
		}
	}
}

func TestVisibleNotMounted(t *testing.T) {
	dir := t.TempDir()
	hidden := func(p string) error { return fmt.Errorf("%s %w", p, engine.ErrNotMounted) }
	err := visible(hidden, "bind mount "+dir+" of app", dir)
	if !errors.Is(err, engine.ErrNotMounted) || !strings.HasPrefix(err.Error(), "bind mount "+dir+" of app: ") {
		t.Fatalf("a path on lifeboat's own root: %v", err)
	}
}
