package consistency

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
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
	pg, err := PostgresDumps([]string{"app", "we/ird"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(append(pg, MariaDBDumps([]string{"app"})...), RedisDumps()...) {
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
	if d := pg[2]; d.File != "we%2Fird.dump" || d.Source != "we/ird" || d.Cmd[len(d.Cmd)-1] != "we/ird" {
		t.Errorf("database name handling: %+v", d)
	}
}

func TestSQLiteAndMongo(t *testing.T) {
	if p, _ := Detect("myapp:1", map[string]string{LabelSQLite: "/data/app.db, /data/jobs.db"}); p != SQLite {
		t.Errorf("lifeboat.sqlite not detected: %q", p)
	}
	if p, _ := Detect("mongo:7", nil); p != MongoDB {
		t.Errorf("mongo image: %q", p)
	}
	files := SQLiteFiles(map[string]string{LabelSQLite: "/data/app.db, /data/jobs.db,"})
	d, err := SQLiteDumps(files)
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 2 || d[0].File != "data%2Fapp.db" || d[0].Source != "/data/app.db" || d[1].Cmd[len(d[1].Cmd)-1] != "/data/jobs.db" {
		t.Fatalf("sqlite dumps: %+v", d)
	}
	if !strings.Contains(d[0].Cmd[2], `.backup '$f'`) {
		t.Errorf("not an online .backup: %s", d[0].Cmd[2])
	}
	m := MongoDumps()
	script := m[0].Cmd[2]
	for _, want := range []string{"mongodump --archive", "--authenticationDatabase admin", "MONGO_INITDB_ROOT_PASSWORD_FILE", "--config $cfg", "umask 077"} {
		if !strings.Contains(script, want) {
			t.Errorf("mongodump command lacks %q: %s", want, script)
		}
	}
	// The password reaches mongodump through the config file only.
	if strings.Contains(script, "--password") {
		t.Errorf("a password flag would show in the host's process list: %s", script)
	}
	if r := MongoRestore(true)[2]; !strings.Contains(r, "mongorestore --archive") || !strings.Contains(r, "--drop") {
		t.Errorf("mongorestore: %s", r)
	}
	if r := MongoRestore(false)[2]; strings.Contains(r, "--drop") {
		t.Errorf("mongorestore drops without --force: %s", r)
	}
}

// TestMongoAuthScript runs the credential part of the MongoDB command in a
// real shell with a stand-in mongodump that prints its arguments and the
// config file, so the quoting is checked, not just the text.
func TestMongoAuthScript(t *testing.T) {
	dir := t.TempDir()
	fake := "#!/bin/sh\necho \"args: $*\"\nfor a in \"$@\"; do [ -f \"$a\" ] && cat \"$a\"; done\n"
	if err := os.WriteFile(filepath.Join(dir, "mongodump"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("s3cret pw"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(MongoDumps()[0].Cmd[0], MongoDumps()[0].Cmd[1:]...)
	cmd.Env = []string{"PATH=" + dir + ":/usr/bin:/bin", "MONGO_INITDB_ROOT_USERNAME=root", "MONGO_INITDB_ROOT_PASSWORD_FILE=" + pw}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "--archive --quiet --username root --authenticationDatabase admin --config /tmp/lifeboat-") || !strings.Contains(s, `password: "s3cret pw"`) {
		t.Fatalf("output: %s", s)
	}
	if strings.Contains(strings.SplitN(s, "\n", 2)[0], "s3cret") {
		t.Fatalf("the password is in mongodump's arguments: %s", s)
	}
}

// TestDumpsRunAtLowPriority runs every dump command of PostgreSQL and
// MariaDB with stand-ins for nice, ionice, renice, psql and the dump
// tools on PATH: each tool must run under nice and ionice, so the
// database's own clients come first while it dumps, and PostgreSQL's
// server process that serves pg_dump (found by its application name)
// must be reniced too.
func TestDumpsRunAtLowPriority(t *testing.T) {
	bin := t.TempDir()
	stub := func(name, body string) {
		if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	stub("nice", `echo "nice $*" >>"$LOG"; shift 2; exec "$@"`)
	stub("ionice", `case "$*" in *-p*) echo "ionice $*" >>"$LOG"; exit 0;; esac; echo "ionice $*" >>"$LOG"; shift 4; exec "$@"`)
	stub("renice", `echo "renice $*" >>"$LOG"`)
	// psql answers the watcher's query only for the dump's own name.
	stub("psql", `case "$*" in *"application_name = 'lifeboat-dump-"*) [ "$PGAPPNAME" = lifeboat-watch ] && echo 4242;; esac`)
	// pg_dump waits until its server process was reniced, as a dump does.
	stub("pg_dump", `echo "pg_dump ran as ${PGAPPNAME%%-[0-9]*}" >>"$LOG"; i=0; while [ $i -lt 50 ] && ! grep -q renice "$LOG"; do sleep 0.1; i=$((i+1)); done`)
	stub("mariadb-dump", `echo "mariadb-dump ran" >>"$LOG"`)
	pg, err := PostgresDumps([]string{"app"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range append(pg[1:], MariaDBDumps([]string{"app"})...) {
		log := filepath.Join(t.TempDir(), "log")
		cmd := exec.Command(c.Cmd[0], c.Cmd[1:]...)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "LOG=" + log}
		out, err := cmd.CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Fatalf("%s: %v: %q", c.File, err, out)
		}
		got, _ := os.ReadFile(log)
		lines := strings.Split(strings.TrimSpace(string(got)), "\n")
		// The watcher's lines come when they come; the tool's in order.
		tool := slices.DeleteFunc(slices.Clone(lines), func(l string) bool { return strings.HasSuffix(l, "-p 4242") })
		if len(tool) != 3 || !strings.HasPrefix(tool[0], "nice -n 10") || !strings.HasPrefix(tool[1], "ionice -c 2 -n 7") || !strings.HasSuffix(tool[2], " ran") && !strings.HasSuffix(tool[2], " ran as lifeboat-dump") {
			t.Errorf("%s: the dump tool did not run under nice and ionice: %q", c.File, lines)
		}
		if strings.HasSuffix(c.File, ".dump") {
			for _, want := range []string{"pg_dump ran as lifeboat-dump", "renice -n 10 -p 4242", "ionice -c 2 -n 7 -p 4242"} {
				if !slices.Contains(lines, want) {
					t.Errorf("%s: no %q: %q", c.File, want, lines)
				}
			}
		}
	}
}
