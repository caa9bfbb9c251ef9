// Package consistency holds what makes a capture consistent without agents:
// database dump profiles run through the Engine API's exec in the
// database's own container.
package consistency

import (
	"fmt"
	"strings"
)

// Profiles lifeboat knows.
const (
	PostgreSQL = "postgres"
	MariaDB    = "mariadb"
	Redis      = "redis"
)

// LabelDump names a container's profile explicitly, or "none".
const LabelDump = "lifeboat.dump"

// Detect recognises a database container by its label, else its image
// name. It returns the profile ("" for none) and why.
func Detect(image string, labels map[string]string) (profile, reason string) {
	if v, ok := labels[LabelDump]; ok {
		switch v = strings.ToLower(strings.TrimSpace(v)); v {
		case "none", "":
			return "", LabelDump + "=none"
		case "mysql":
			return MariaDB, LabelDump + "=" + v
		case PostgreSQL, MariaDB, Redis:
			return v, LabelDump + "=" + v
		}
		return "", fmt.Sprintf("%s=%s is not a known profile (postgres, mariadb, mysql, redis)", LabelDump, v)
	}
	name := strings.ToLower(image)
	if i := strings.LastIndex(name, "/"); i >= 0 {
		name = name[i+1:]
	}
	name, _, _ = strings.Cut(name, ":")
	switch {
	case strings.Contains(name, "postgres"):
		return PostgreSQL, "image " + image
	case strings.Contains(name, "mariadb"), strings.Contains(name, "mysql"):
		return MariaDB, "image " + image
	case strings.Contains(name, "redis"):
		return Redis, "image " + image
	}
	return "", ""
}

// Command is one dump: the file it becomes and what to run for it.
type Command struct {
	File string
	Cmd  []string
	Env  []string
}

// fromEnv builds the shell snippet that sets a client's password variable
// from the container's own VAR or VAR_FILE, so the secret is read inside
// the container and never passes through lifeboat's arguments.
func fromEnv(target string, vars ...string) string {
	var b strings.Builder
	for _, v := range vars {
		fmt.Fprintf(&b, `if [ -n "${%[1]s_FILE:-}" ]; then export %[2]s="$(cat "$%[1]s_FILE")"; elif [ -n "${%[1]s:-}" ]; then export %[2]s="$%[1]s"; fi; `, v, target)
	}
	return b.String()
}

// PostgresList lists the databases to dump one by one.
func PostgresList() []string {
	return []string{"sh", "-c", fromEnv("PGPASSWORD", "POSTGRES_PASSWORD") +
		`export PGUSER="${POSTGRES_USER:-postgres}"; exec psql -XAtc "SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY 1" postgres`}
}

// PostgresDumps are pg_dumpall --globals-only (roles, tablespaces) and a
// custom-format pg_dump per database, restorable with pg_restore.
func PostgresDumps(databases []string) []Command {
	pre := fromEnv("PGPASSWORD", "POSTGRES_PASSWORD") + `export PGUSER="${POSTGRES_USER:-postgres}"; `
	cmds := []Command{{File: "globals.sql", Cmd: []string{"sh", "-c", pre + "exec pg_dumpall --globals-only"}}}
	for _, db := range databases {
		cmds = append(cmds, Command{File: safeName(db) + ".dump", Cmd: []string{"sh", "-c", pre + `exec pg_dump -Fc "$1"`, "sh", db}})
	}
	return cmds
}

// MariaDBDumps is one consistent dump of every database.
func MariaDBDumps() []Command {
	return []Command{{File: "all-databases.sql", Cmd: []string{"sh", "-c",
		fromEnv("MYSQL_PWD", "MYSQL_ROOT_PASSWORD", "MARIADB_ROOT_PASSWORD") +
			`tool=mariadb-dump; command -v $tool >/dev/null || tool=mysqldump; ` +
			`exec $tool -uroot --single-transaction --routines --events --all-databases`}}}
}

// RedisDumps is the RDB snapshot, fetched by redis-cli --rdb into the
// container's /tmp and streamed out (nothing touches the host's disk).
func RedisDumps() []Command {
	return []Command{{File: "dump.rdb", Cmd: []string{"sh", "-c", fromEnv("REDISCLI_AUTH", "REDIS_PASSWORD") +
		`f=/tmp/lifeboat-$$.rdb; redis-cli --rdb "$f" >/dev/null 2>&1 || { echo "redis-cli --rdb failed" >&2; rm -f "$f"; exit 1; }; cat "$f"; rc=$?; rm -f "$f"; exit $rc`}}}
}

func safeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c == '/' || c == 0 {
			b[i] = '_'
		}
	}
	if len(b) == 0 || s == "." || s == ".." {
		return "_"
	}
	return string(b)
}
