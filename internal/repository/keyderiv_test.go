package repository

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/secret"
)

// TestInitKeyDerivation: init records the chosen key derivation in the
// format blob, where kopia (and the stock CLI) reads it on every open; a
// name it does not know is refused before anything is written.
func TestInitKeyDerivation(t *testing.T) {
	for name, want := range map[string]string{"pbkdf2": "pbkdf2-sha256-600000", "scrypt": "scrypt-65536-8-1"} {
		opts := newTestOptions(t, "right-password")
		opts.KeyDerivation = name
		mustInit(t, opts)
		b, err := os.ReadFile(filepath.Join(opts.Location, "kopia.repository.f"))
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			KeyAlgo string `json:"keyAlgo"`
		}
		if err := json.Unmarshal(b, &f); err != nil || f.KeyAlgo != want {
			t.Fatalf("--key-derivation %s: the format blob says %q (%v), want %q", name, f.KeyAlgo, err, want)
		}
		bad := opts
		bad.Password = PasswordSource{Value: secret.New("wrong-password")}
		bad.StateDir = filepath.Join(t.TempDir(), "fresh")
		if _, err := Open(t.Context(), bad); !errors.Is(err, ErrWrongPassword) {
			t.Fatalf("--key-derivation %s: open with a wrong password: %v, want ErrWrongPassword", name, err)
		}
	}
	opts := newTestOptions(t, "pw")
	opts.KeyDerivation = "argon2"
	if _, err := Init(t.Context(), opts); !errors.Is(err, ErrKeyDerivation) {
		t.Fatalf("init with an unknown key derivation: %v, want ErrKeyDerivation", err)
	}
	if _, err := os.Stat(opts.Location); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a refused init left %s: %v", opts.Location, err)
	}
}
