package consistency

import "fmt"

// Commands that check a database's files with the database's own tool,
// for restore drills. Like the dumps, they run through exec in the
// database's container and read credentials from its environment. Each
// exits non-zero when the check finds damage.

// Check is one integrity check: its name in a drill's results and the
// command.
type Check struct {
	Name string
	Cmd  []string
}

// Checks are the integrity checks of a container of profile: nil for a
// profile without one (MongoDB). labels name SQLite's files.
func Checks(profile string, labels map[string]string) []Check {
	switch profile {
	case PostgreSQL:
		// --install-missing adds the amcheck extension to each database
		// (the sandbox's copy only); --heapallindexed also proves every
		// heap tuple has its index entries, which costs a pass over the
		// indexes, cheap next to a restore.
		return []Check{{Name: "pg_amcheck", Cmd: []string{"sh", "-c", pgAuth() +
			`exec pg_amcheck --all --install-missing --heapallindexed 2>&1`}}}
	case MariaDB:
		// mariadb-check reports damage per table yet may still exit 0:
		// a line saying error or corrupt fails it too.
		return []Check{{Name: "mariadb-check", Cmd: []string{"sh", "-c", mariaAuth() +
			`tool=mariadb-check; command -v $tool >/dev/null || tool=mysqlcheck; ` +
			`out=$($tool -uroot --all-databases 2>&1); rc=$?; echo "$(echo "$out" | grep -c ' OK$') tables OK"; echo "$out"; ` +
			`if echo "$out" | grep -qiE '^error|corrupt'; then exit 1; fi; exit $rc`}}}
	case Redis:
		return []Check{{Name: "redis-check-rdb", Cmd: []string{"sh", "-c", redisAuth() +
			`dir=$(redis-cli CONFIG GET dir | sed -n 2p) && f=$(redis-cli CONFIG GET dbfilename | sed -n 2p) || exit 1; ` +
			`if [ ! -e "$dir/$f" ]; then echo "no RDB file at $dir/$f: the server holds no saved keys"; exit 0; fi; ` +
			`exec redis-check-rdb "$dir/$f" 2>&1`}}}
	case SQLite:
		var out []Check
		for _, f := range SQLiteFiles(labels) {
			out = append(out, Check{Name: "sqlite integrity_check " + f, Cmd: SQLiteIntegrity(f)})
		}
		return out
	}
	return nil
}

// SQLiteIntegrity runs PRAGMA integrity_check on the database file $1,
// which must answer "ok".
func SQLiteIntegrity(path string) []string {
	return []string{"sh", "-c", `out=$(sqlite3 "$1" "PRAGMA integrity_check" 2>&1); rc=$?; echo "$out"; [ $rc -eq 0 ] && [ "$out" = ok ]`, "sh", path}
}

// Ready is a command that succeeds once a server of profile accepts
// queries; nil for profiles without a server (SQLite).
func Ready(profile string) []string {
	switch profile {
	case PostgreSQL:
		return []string{"sh", "-c", pgAuth() + `pg_isready -q && exec psql -XAtq -c "SELECT 1" postgres >/dev/null`}
	case MariaDB:
		return []string{"sh", "-c", mariaAuth() + mariaClient + `exec $tool -uroot -e "SELECT 1" >/dev/null`}
	case Redis:
		return []string{"sh", "-c", redisAuth() + `test "$(redis-cli PING)" = PONG`}
	case MongoDB:
		return []string{"sh", "-c", mongoAuth() + `mongosh --quiet $auth --eval 'db.runCommand({ping: 1}).ok' >/dev/null; rc=$?; rm -f "$cfg"; exit $rc`}
	}
	return nil
}

// CheckName is the name of the check of a dump of profile, loaded into a
// scratch server.
func CheckName(profile string) string { return fmt.Sprintf("dump load (%s)", profile) }
