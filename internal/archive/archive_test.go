package archive

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

// TestPackExtractRoundTrip packs the edge tree and unpacks it: every
// case a faithful backup keeps comes back, sparse files included.
func TestPackExtractRoundTrip(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("needs root: owners and device nodes")
	}
	src, dst := filepath.Join(t.TempDir(), "src"), t.TempDir()
	testutil.MakeEdgeTree(t, src)
	r, w := io.Pipe()
	go func() {
		// "." names entries as the engine does ("./a").
		_, err := Pack(src, ".", w)
		w.CloseWithError(err)
	}()
	if _, err := Extract(r, dst); err != nil {
		t.Fatal(err)
	}
	testutil.RequireSameTree(t, src, dst)
}

func TestCleanNameRefusesEscapes(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"./a/b", "a/b"}, {"a/b/", "a/b"}, {"./", "."}, {".", "."}, {"/abs/x", "abs/x"},
	} {
		got, err := cleanName(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("cleanName(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"../x", "a/../../x", "a/.."} {
		if _, err := cleanName(bad); err == nil {
			t.Errorf("cleanName(%q) accepted", bad)
		}
	}
}
