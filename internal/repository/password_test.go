package repository

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestEmptyPasswordFile(t *testing.T) {
	opts := newTestOptions(t, "pw")
	mustInit(t, opts).Close(t.Context())
	for _, content := range []string{"", "\n", "\r\n"} {
		f := filepath.Join(t.TempDir(), "pw")
		if err := os.WriteFile(f, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		o := opts
		o.Password = PasswordSource{File: f}
		if _, err := Open(t.Context(), o); !errors.Is(err, ErrEmptyPassword) {
			t.Fatalf("open with password file %q: %v, want ErrEmptyPassword", content, err)
		}
	}
}
