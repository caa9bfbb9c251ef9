package consistency

import (
	"strings"
	"testing"
)

func TestChecks(t *testing.T) {
	for _, tc := range []struct {
		profile string
		labels  map[string]string
		names   []string
	}{
		{PostgreSQL, nil, []string{"pg_amcheck"}},
		{MariaDB, nil, []string{"mariadb-check"}},
		{Redis, nil, []string{"redis-check-rdb"}},
		{SQLite, map[string]string{LabelSQLite: "/data/a.db, /data/b.db"}, []string{"sqlite integrity_check /data/a.db", "sqlite integrity_check /data/b.db"}},
		{MongoDB, nil, nil},
		{"", nil, nil},
	} {
		t.Run(tc.profile, func(t *testing.T) {
			cs := Checks(tc.profile, tc.labels)
			var names []string
			for _, c := range cs {
				names = append(names, c.Name)
				if len(c.Cmd) < 3 || c.Cmd[0] != "sh" {
					t.Fatalf("check %s: %q is no sh -c command", c.Name, c.Cmd)
				}
			}
			if strings.Join(names, "|") != strings.Join(tc.names, "|") {
				t.Fatalf("checks %q, want %q", names, tc.names)
			}
		})
	}
	// Paths are arguments, never spliced into the script.
	c := SQLiteIntegrity(`/d/x"; rm -rf /; ".db`)
	if strings.Contains(c[2], "rm -rf") || c[4] != `/d/x"; rm -rf /; ".db` {
		t.Fatalf("the path reached the script: %q", c)
	}
}

func TestReady(t *testing.T) {
	for _, p := range []string{PostgreSQL, MariaDB, Redis, MongoDB} {
		if Ready(p) == nil {
			t.Errorf("%s has no readiness command", p)
		}
	}
	if Ready(SQLite) != nil {
		t.Errorf("sqlite has no server to wait for")
	}
}
