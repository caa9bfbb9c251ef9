package consistency

import (
	"strings"
	"testing"
)

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		image   string
		labels  map[string]string
		profile string
	}{
		{"postgres:16", nil, PostgreSQL}, {"lifeboat-test/postgres:15", nil, PostgreSQL},
		{"mariadb:11", nil, MariaDB}, {"mysql:8", nil, MariaDB}, {"bitnami/redis:7", nil, Redis},
		{"nginx:1", nil, ""}, {"myapp:1", map[string]string{LabelDump: "postgres"}, PostgreSQL},
		{"postgres:16", map[string]string{LabelDump: "none"}, ""}, {"x", map[string]string{LabelDump: "mysql"}, MariaDB},
		{"registry.local:5000/team/redis-cache:2", nil, Redis},
	} {
		if got, why := Detect(tc.image, tc.labels); got != tc.profile {
			t.Errorf("Detect(%q, %v) = %q (%s), want %q", tc.image, tc.labels, got, why, tc.profile)
		}
	}
	if p, why := Detect("x", map[string]string{LabelDump: "oracle"}); p != "" || !strings.Contains(why, "not a known profile") {
		t.Errorf("unknown profile: %q %q", p, why)
	}
}

func TestCommandsKeepSecretsOutOfArguments(t *testing.T) {
	for _, c := range append(append(PostgresDumps([]string{"app", "we/ird"}), MariaDBDumps()...), RedisDumps()...) {
		for _, a := range c.Cmd {
			if strings.Contains(a, "hunter2") {
				t.Fatal("a secret in arguments")
			}
		}
		// Passwords are only copied from variables inside the container,
		// never written as values.
		line := strings.Join(c.Cmd, " ")
		for _, part := range strings.Split(line, "PASSWORD=")[1:] {
			if !strings.HasPrefix(part, `"$`) {
				t.Errorf("%s: a literal password in the command line: %v", c.File, c.Cmd)
			}
		}
	}
	if d := PostgresDumps([]string{"we/ird"}); d[1].File != "we_ird.dump" || d[1].Cmd[len(d[1].Cmd)-1] != "we/ird" {
		t.Errorf("database name handling: %+v", d[1])
	}
}
