package beneath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadRegular(t *testing.T) {
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(dir, "compose.yaml"), []byte("services: {}\n"), 0o640))
	must(os.WriteFile(filepath.Join(dir, "big"), []byte(strings.Repeat("x", 101)), 0o644))
	must(os.WriteFile(filepath.Join(dir, "secret"), []byte("s"), 0o600))
	must(os.Symlink(filepath.Join(dir, "secret"), filepath.Join(dir, "link")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644))
	must(os.Mkdir(filepath.Join(dir, "sub"), 0o755))
	d, err := os.Open(dir)
	must(err)
	defer d.Close()

	got, err := ReadRegular(d, "compose.yaml", 100)
	if err != nil || string(got.Data) != "services: {}\n" || got.Mode != 0o640 || got.UID != os.Getuid() {
		t.Fatalf("regular file: %+v, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		want error
	}{
		{"link", ErrNotRegular},
		{"fifo", ErrNotRegular}, // would block a plain open for reading
		{"sub", ErrNotRegular},
		{"big", ErrTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ReadRegular(d, tc.name, 100)
			if !errors.Is(err, tc.want) {
				t.Fatalf("ReadRegular(%s) = %q, %v; want %v", tc.name, got.Data, err, tc.want)
			}
		})
	}
	if _, err := ReadRegular(d, "missing", 100); !IsNotExist(err) {
		t.Fatalf("missing file: %v, want not exist", err)
	}
	// A device node is refused before it is opened.
	if _, err := ReadRegular(mustOpen(t, "/dev"), "null", 100); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("/dev/null: %v, want not regular", err)
	}
}

func mustOpen(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}
