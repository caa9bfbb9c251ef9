package restore

import "testing"

func TestDumpDatabase(t *testing.T) {
	sources := map[string]string{"a%2Fb.dump": "a/b", "long~0123456789abcdef.dump": "a very long name"}
	for _, tc := range []struct {
		file, db string
		ok       bool
	}{
		{"a%2Fb.dump", "a/b", true},                              // as the manifest names it
		{"long~0123456789abcdef.dump", "a very long name", true}, // cut to fit: only the manifest knows
		{"my%20db.dump", "my db", true},                          // not in the manifest: decoded
		{"we_ird.dump", "we_ird", true},                          // an older point's name
		{"100%.dump", "100%", true},                              // an older point's name that is no encoding
		{"globals.sql", "", false},
	} {
		db, ok := dumpDatabase(tc.file, sources)
		if db != tc.db || ok != tc.ok {
			t.Errorf("dumpDatabase(%q) = %q, %v; want %q, %v", tc.file, db, ok, tc.db, tc.ok)
		}
	}
}
