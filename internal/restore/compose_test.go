package restore

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

func TestComposeDst(t *testing.T) {
	c := &layout.Compose{WorkingDir: "/srv/shop"}
	for _, tc := range []struct{ src, dir, want string }{
		{"/srv/shop/compose.yaml", "", "/srv/shop/compose.yaml"},
		{"/srv/shop/compose.yaml", "/restore/shop", "/restore/shop/compose.yaml"},
		{"/srv/shop/ops/override.yaml", "/restore/shop", "/restore/shop/ops/override.yaml"},
		{"/srv/shop/.env", "/restore/shop", "/restore/shop/.env"},
		{"/etc/shop/base.yaml", "/restore/shop", "/restore/shop/base.yaml"},
		{"/srv/shopping/x.yaml", "/restore/shop", "/restore/shop/x.yaml"}, // a sibling, not beneath
	} {
		if got := composeDst(c, layout.ComposeFile{Source: tc.src}, tc.dir); got != tc.want {
			t.Errorf("composeDst(%s, %q) = %s, want %s", tc.src, tc.dir, got, tc.want)
		}
	}
}

func TestSameEntry(t *testing.T) {
	mtime := time.Date(2026, 12, 2, 3, 4, 5, 123456789, time.UTC)
	file := repository.DirEntry{Name: "f", Type: "file", Size: 5, ModTime: mtime}
	st := func(mode uint32, size int64, mt time.Time) unix.Stat_t {
		return unix.Stat_t{Mode: mode, Size: size, Mtim: unix.NsecToTimespec(mt.UnixNano())}
	}
	for _, tc := range []struct {
		name string
		e    repository.DirEntry
		st   unix.Stat_t
		same bool
	}{
		{"same file", file, st(unix.S_IFREG|0o644, 5, mtime), true},
		{"other size", file, st(unix.S_IFREG|0o644, 6, mtime), false},
		{"other mtime", file, st(unix.S_IFREG|0o644, 5, mtime.Add(time.Nanosecond)), false},
		{"a symlink for a file", file, st(unix.S_IFLNK|0o777, 5, mtime), false},
		{"a fifo for a file", file, st(unix.S_IFIFO|0o644, 0, mtime), false},
		{"dir times do not count", repository.DirEntry{Type: "dir"}, st(unix.S_IFDIR|0o755, 4096, mtime), true},
	} {
		if got := sameEntry(tc.e, tc.st) == ""; got != tc.same {
			t.Errorf("%s: same %v, want %v (%q)", tc.name, got, tc.same, sameEntry(tc.e, tc.st))
		}
	}
}
