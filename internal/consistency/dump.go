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
	SQLite     = "sqlite"
	MongoDB    = "mongodb"
)

// LabelSQLite names the SQLite database files of a container, comma
// separated: each gets an online .backup.
const LabelSQLite = "lifeboat.sqlite"

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
		case "mongo":
			return MongoDB, LabelDump + "=" + v
		case PostgreSQL, MariaDB, Redis, SQLite, MongoDB:
			return v, LabelDump + "=" + v
		}
		return "", fmt.Sprintf("%s=%s is not a known profile (postgres, mariadb, mysql, redis, sqlite, mongodb)", LabelDump, v)
	}
	if v := strings.TrimSpace(labels[LabelSQLite]); v != "" {
		return SQLite, LabelSQLite + "=" + v
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
	case strings.Contains(name, "mongo"):
		return MongoDB, "image " + image
	}
	return "", ""
}

// Command is one dump: the file it becomes and what to run for it.
type Command struct {
	File   string
	Source string // the file in the container it copies, for SQLite
	Cmd    []string
	Env    []string
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

// lowPriority starts the exec'd command with the lowest CPU and I/O
// priority where the image has nice and ionice: the database's own
// clients come first while a dump runs. It ends in "exec".
const lowPriority = lowPriorityRun + `exec $p `

// lowPriorityRun sets $p to the prefix that runs a command at that
// priority, for a script that still has work after it.
const lowPriorityRun = `p=; command -v nice >/dev/null && p="nice -n 10"; command -v ionice >/dev/null && p="$p ionice -c 2 -n 7"; `

// pgDumpLow runs pg_dump ($1) with the prefix $p, and lowers the
// priority of the server process that serves it, which does most of a
// dump's work and, a child of the postmaster, does not inherit pg_dump's:
// a watcher finds it by the application name pg_dump connects with and
// renices it. The watcher ends by itself once pg_dump has (it is never
// killed) and is waited for: a process of ours that died by a signal
// after its parent, an orphan, would be reaped by the container's PID 1
// — often the postmaster, which takes any child it reaps killed for a
// crashed server process and restarts the database. It writes nothing
// to the dump's output.
const pgDumpLow = `app=lifeboat-dump-$$; PGAPPNAME=$app $p pg_dump -Fc -Z0 "$1" & d=$!; w=; ` +
	`if command -v renice >/dev/null; then ( i=0; while [ $i -lt 100 ] && kill -0 $d; do ` +
	`b=$(PGAPPNAME=lifeboat-watch psql -XAtc "SELECT pid FROM pg_stat_activity WHERE application_name = '$app'" postgres); ` +
	`if [ -n "$b" ]; then for x in $b; do renice -n 10 -p $x; command -v ionice >/dev/null && ionice -c 2 -n 7 -p $x; done; exit 0; fi; ` +
	`sleep 0.1; i=$((i+1)); done ) >/dev/null 2>&1 & w=$!; fi; ` +
	`wait $d; rc=$?; [ -z "$w" ] || wait $w; `

// The shell prefixes that give each profile's client the container's own
// credentials.
func pgAuth() string {
	return fromEnv("PGPASSWORD", "POSTGRES_PASSWORD") + `export PGUSER="${POSTGRES_USER:-postgres}"; `
}

func mariaAuth() string { return fromEnv("MYSQL_PWD", "MYSQL_ROOT_PASSWORD", "MARIADB_ROOT_PASSWORD") }

func redisAuth() string { return fromEnv("REDISCLI_AUTH", "REDIS_PASSWORD") }

// PostgresList lists the databases to dump one by one, each name in hex
// on its own line (ParseNames reads it): a name may hold any character.
func PostgresList() []string {
	return []string{"sh", "-c", pgAuth() + `exec psql -XAtc "SELECT encode(convert_to(datname, 'UTF8'), 'hex') FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname" postgres`}
}

// PostgresRoles lists the server's roles, in hex, one a line.
func PostgresRoles() []string {
	return []string{"sh", "-c", pgAuth() + `exec psql -XAtc "SELECT encode(convert_to(rolname, 'UTF8'), 'hex') FROM pg_roles ORDER BY rolname" postgres`}
}

// PostgresDumps are pg_dumpall --globals-only (roles, tablespaces) and a
// custom-format pg_dump per database, restorable with pg_restore. Each
// database's file is FileName(db, ".dump"); its Source is the name, so the
// manifest maps every file back to its database.
func PostgresDumps(databases []string) ([]Command, error) {
	pre := pgAuth()
	cmds := []Command{{File: "globals.sql", Cmd: []string{"sh", "-c", pre + "exec pg_dumpall --globals-only"}}}
	for _, db := range databases {
		// -Z0: kopia compresses and deduplicates; a compressed dump would
		// cost the database's CPU twice and change entirely between points.
		cmds = append(cmds, Command{File: FileName(db, ".dump"), Source: db, Cmd: []string{"sh", "-c", pre + lowPriorityRun + pgDumpLow +
			`[ $rc -eq 0 ] || { echo "pg_dump of database '$1' failed (exit $rc)" >&2; exit $rc; }`, "sh", db}})
	}
	return cmds, checkUnique(cmds)
}

// MariaDB's dump files: the user databases in one transaction, and the
// system schema (users, grants) apart, loaded only with --with-users, so
// that loading into another server keeps that server's own logins. Points
// of older versions hold MariaDBAllFile instead.
const (
	MariaDBDatabasesFile = "databases.sql"
	MariaDBSystemFile    = "mysql.sql"
	MariaDBAllFile       = "all-databases.sql"
)

// mariaDump picks the dump tool by its new name or its old one.
const mariaDump = `tool=mariadb-dump; command -v $tool >/dev/null || tool=mysqldump; `

// MariaDBList lists the databases outside the system schemas, in hex, one
// a line.
func MariaDBList() []string {
	return []string{"sh", "-c", mariaAuth() + mariaClient +
		`exec $tool -uroot -N -B -e "SELECT HEX(SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys') ORDER BY SCHEMA_NAME"`}
}

// MariaDBDumps are every database of the list in one dump (one
// transaction: the databases stay consistent with each other), then the
// mysql system schema in its own file. information_schema,
// performance_schema and sys are views of the server, never dumped.
func MariaDBDumps(databases []string) []Command {
	flags := `-uroot --single-transaction --routines --events --triggers --databases`
	var cmds []Command
	if len(databases) > 0 {
		cmds = append(cmds, Command{File: MariaDBDatabasesFile, Cmd: append([]string{"sh", "-c", mariaAuth() + mariaDump + lowPriority + `$tool ` + flags + ` "$@"`, "sh"}, databases...)})
	}
	return append(cmds, Command{File: MariaDBSystemFile, Cmd: []string{"sh", "-c", mariaAuth() + mariaDump + lowPriority + `$tool ` + flags + ` mysql`}})
}

// RedisDumps is the RDB snapshot, fetched by redis-cli --rdb into the
// container's /tmp and streamed out (nothing touches the host's disk).
func RedisDumps() []Command {
	return []Command{{File: "dump.rdb", Cmd: []string{"sh", "-c", redisAuth() +
		`f=/tmp/lifeboat-$$.rdb; redis-cli --rdb "$f" >/dev/null 2>&1 || { echo "redis-cli --rdb failed" >&2; rm -f "$f"; exit 1; }; cat "$f"; rc=$?; rm -f "$f"; exit $rc`}}}
}

// SQLiteFiles are the database paths a container's label names.
func SQLiteFiles(labels map[string]string) []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range strings.Split(labels[LabelSQLite], ",") {
		if p = strings.TrimSpace(p); p != "" && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}

// SQLiteDumps are online .backup copies of each database: SQLite's backup
// API copies a consistent state while writers go on. The copy is made in
// the container's /tmp (the API needs a file) and streamed out.
func SQLiteDumps(paths []string) ([]Command, error) {
	var cmds []Command
	for _, p := range paths {
		cmds = append(cmds, Command{File: FileName(strings.TrimPrefix(p, "/"), ""), Source: p, Cmd: []string{"sh", "-c",
			`command -v sqlite3 >/dev/null || { echo "sqlite3 is not in this container: add it to the image, or drop the lifeboat.sqlite label" >&2; exit 127; }; ` +
				`[ -f "$1" ] || { echo "$1: no such database file" >&2; exit 1; }; ` +
				`f=$(mktemp /tmp/lifeboat-XXXXXX) || exit 1; sqlite3 -cmd ".timeout 30000" "$1" ".backup '$f'" || { rm -f "$f"; exit 1; }; cat "$f"; rc=$?; rm -f "$f"; exit $rc`,
			"sh", p}})
	}
	return cmds, checkUnique(cmds)
}

// MongoDumps is one mongodump archive of every database. The password
// goes through a 0600 config file in the container, never an argument:
// the host's process list shows the processes of every container.
func MongoDumps() []Command {
	return []Command{{File: "dump.archive", Cmd: []string{"sh", "-c", mongoAuth() +
		`mongodump --archive --quiet $auth; rc=$?; rm -f "$cfg"; exit $rc`}}}
}

// mongoAuth sets $auth (and $cfg) from MONGO_INITDB_ROOT_USERNAME and
// _PASSWORD or their _FILE variants.
func mongoAuth() string {
	return fromEnv("LB_MONGO_USER", "MONGO_INITDB_ROOT_USERNAME") + fromEnv("LB_MONGO_PASSWORD", "MONGO_INITDB_ROOT_PASSWORD") +
		`auth=; cfg=; if [ -n "${LB_MONGO_USER:-}" ]; then cfg=$(umask 077; mktemp /tmp/lifeboat-XXXXXX) || exit 1; ` +
		`printf 'password: "%s"\n' "$LB_MONGO_PASSWORD" > "$cfg"; auth="--username $LB_MONGO_USER --authenticationDatabase admin --config $cfg"; fi; ` +
		`unset LB_MONGO_PASSWORD; `
}

// MongoRestore loads a mongodump archive from stdin, dropping each
// collection first when replace is set.
func MongoRestore(replace bool) []string {
	drop := ""
	if replace {
		drop = " --drop"
	}
	return []string{"sh", "-c", mongoAuth() + `mongorestore --archive --quiet` + drop + ` $auth; rc=$?; rm -f "$cfg"; exit $rc`}
}
