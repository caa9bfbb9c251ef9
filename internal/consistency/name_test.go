package consistency

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestFileName(t *testing.T) {
	long := strings.Repeat("é", 100) // 200 bytes, 600 encoded
	for _, tc := range []struct {
		name, want string
	}{
		{"app", "app.dump"},
		{"a/b", "a%2Fb.dump"},
		{"a_b", "a_b.dump"},
		{"a%2Fb", "a%252Fb.dump"},
		{"my db", "my%20db.dump"},
		{"tab\tnew\nline", "tab%09new%0Aline.dump"},
		{"Ünï", "%C3%9Cn%C3%AF.dump"},
		{".", "%2E.dump"},
		{"..", "%2E..dump"},
		{".hidden", "%2Ehidden.dump"},
		{"v1.2-x_y", "v1.2-x_y.dump"},
		{"~tilde", "%7Etilde.dump"},
		{"", "%.dump"},
		{"nul\x00", "nul%00.dump"},
	} {
		t.Run(tc.want, func(t *testing.T) {
			got := FileName(tc.name, ".dump")
			if got != tc.want {
				t.Fatalf("FileName(%q) = %q, want %q", tc.name, got, tc.want)
			}
			back, err := DecodeName(strings.TrimSuffix(got, ".dump"))
			if err != nil || back != tc.name {
				t.Fatalf("DecodeName(%q) = %q, %v; want %q", got, back, err, tc.name)
			}
		})
	}
	t.Run("long", func(t *testing.T) {
		a, b := FileName(long+"a", ".dump"), FileName(long+"b", ".dump")
		if len(a) > 255 || len(b) > 255 || a == b {
			t.Fatalf("long names: %d %d bytes, equal %v", len(a), len(b), a == b)
		}
		if !strings.HasSuffix(a, ".dump") || !strings.Contains(a, "~") {
			t.Fatalf("a cut name keeps its suffix and marks the cut: %q", a)
		}
		stem := strings.TrimSuffix(a, ".dump")
		if i := strings.IndexByte(stem, '~'); strings.LastIndexByte(stem[:i], '%') > i-3 {
			t.Fatalf("cut inside an escape: %q", stem)
		}
		if _, err := DecodeName(stem); err == nil {
			t.Fatalf("a cut name decodes as if whole")
		}
		// Just at the limit: whole.
		fit := strings.Repeat("x", 255-len(".dump"))
		if got := FileName(fit, ".dump"); got != fit+".dump" {
			t.Fatalf("a name that fits was cut: %d bytes", len(got))
		}
		if got := FileName(fit+"x", ".dump"); len(got) != 255 || !strings.Contains(got, "~") {
			t.Fatalf("one byte over: %q (%d bytes)", got, len(got))
		}
	})
}

func TestFileNamesAreUnique(t *testing.T) {
	names := []string{"a/b", "a_b", "a%2Fb", "a b", "a+b", "A/B", ".", "..", "%", "", "%2E", "a~b"}
	seen := map[string]string{}
	for _, n := range names {
		f := FileName(n, "")
		if other, ok := seen[f]; ok {
			t.Fatalf("%q and %q both give %q", n, other, f)
		}
		seen[f] = n
	}
}

func TestDecodeNameRejects(t *testing.T) {
	for _, s := range []string{"a%2", "a%zz", "a/b", "a b", ".x", "x~0123"} {
		if got, err := DecodeName(s); err == nil {
			t.Errorf("DecodeName(%q) = %q, want an error", s, got)
		}
	}
}

func TestParseNames(t *testing.T) {
	enc := func(s ...string) string {
		var b strings.Builder
		for _, n := range s {
			b.WriteString(hex.EncodeToString([]byte(n)) + "\n")
		}
		return b.String()
	}
	got, err := ParseNames(enc("app", "a/b", "my db", "new\nline"))
	if err != nil || strings.Join(got, "|") != "app|a/b|my db|new\nline" {
		t.Fatalf("ParseNames: %q %v", got, err)
	}
	if _, err := ParseNames(enc("app", "x", "app")); err == nil || !strings.Contains(err.Error(), "twice") {
		t.Fatalf("a name listed twice: %v", err)
	}
	if _, err := ParseNames("app\n"); err == nil {
		t.Fatal("a listing that is not hex was read")
	}
	if got, err := ParseNames(""); err != nil || len(got) != 0 {
		t.Fatalf("an empty listing: %q %v", got, err)
	}
}

func TestDumpsAreUnique(t *testing.T) {
	if _, err := SQLiteDumps([]string{"/data/app.db", "data/app.db"}); err == nil {
		t.Fatal("two SQLite paths dumped to one file")
	}
	cmds, err := PostgresDumps([]string{"a/b", "a_b"})
	if err != nil || len(cmds) != 3 || cmds[1].File == cmds[2].File {
		t.Fatalf("a/b and a_b: %+v %v", cmds, err)
	}
	if got := SQLiteFiles(map[string]string{LabelSQLite: "/a.db,/a.db"}); len(got) != 1 {
		t.Fatalf("a path named twice is dumped once: %q", got)
	}
}
