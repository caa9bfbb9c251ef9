package consistency

// Commands that load a dump back into a running database container, and
// that tell whether loading would overwrite data. Like the dumps, they read
// credentials from the target container's own environment.

// PostgresTables counts the user relations in database $1.
func PostgresTables(db string) []string {
	return []string{"sh", "-c", pgAuth() + `exec psql -XAtq -d "$1" -c "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"`, "sh", db}
}

// PostgresGlobals replays pg_dumpall --globals-only from stdin. Roles that
// exist already (the superuser always does) make psql report an error and
// go on, which is what a restore into a live server wants.
func PostgresGlobals() []string {
	return []string{"sh", "-c", pgAuth() + `exec psql -X -q -d postgres -f -`}
}

// PostgresRestore loads a custom-format dump from stdin: creating the
// database when it is not there, else into it (dropping what the dump
// holds first when replace is set).
func PostgresRestore(db string, exists, replace bool) []string {
	if !exists {
		return []string{"sh", "-c", pgAuth() + `exec pg_restore --exit-on-error --create -d postgres`}
	}
	flags := "--exit-on-error"
	if replace {
		flags += " --clean --if-exists"
	}
	return []string{"sh", "-c", pgAuth() + `exec pg_restore ` + flags + ` -d "$1"`, "sh", db}
}

// mariaClient picks the client by its new name or its old one.
const mariaClient = `tool=mariadb; command -v $tool >/dev/null || tool=mysql; `

// MariaDBTables counts tables outside the system schemas.
func MariaDBTables() []string {
	return []string{"sh", "-c", mariaAuth() +
		mariaClient + `exec $tool -uroot -N -B -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema NOT IN ('mysql', 'information_schema', 'performance_schema', 'sys')"`}
}

// MariaDBLoad replays a dump from stdin; with flush, FLUSH PRIVILEGES
// after it, so that users and grants written into the mysql schema's
// tables take effect at once, not at the next restart.
func MariaDBLoad(flush bool) []string {
	if flush {
		return []string{"sh", "-c", mariaAuth() + mariaClient + `{ cat; printf '\nFLUSH PRIVILEGES;\n'; } | $tool -uroot`}
	}
	return []string{"sh", "-c", mariaAuth() + mariaClient + `exec $tool -uroot`}
}

// RedisKeys prints the number of keys and whether the append-only file is
// on (the server would then load that, not the RDB, at its restart).
func RedisKeys() []string {
	return []string{"sh", "-c", redisAuth() +
		`n=$(redis-cli DBSIZE) && aof=$(redis-cli CONFIG GET appendonly | sed -n 2p) && echo "$n $aof"`}
}

// RedisReplace writes the RDB from stdin over the server's own, with
// automatic saves off so that none overwrites it before RedisShutdown.
func RedisReplace() []string {
	return []string{"sh", "-c", redisAuth() +
		`set -e; redis-cli CONFIG SET save "" >/dev/null; ` +
		`dir=$(redis-cli CONFIG GET dir | sed -n 2p); f=$(redis-cli CONFIG GET dbfilename | sed -n 2p); ` +
		`cat > "$dir/.lifeboat-$f"; mv "$dir/.lifeboat-$f" "$dir/$f"`}
}

// RedisShutdown stops the server without saving, so it loads the replaced
// RDB when the container starts again. The container dies with it: the
// command's own exit status means nothing.
func RedisShutdown() []string {
	return []string{"sh", "-c", redisAuth() + `redis-cli SHUTDOWN NOSAVE`}
}

// RedisPing answers PONG once the server has loaded its data.
func RedisPing() []string {
	return []string{"sh", "-c", redisAuth() + `redis-cli PING`}
}

// SQLiteExists prints the size of the database file $1, 0 when absent.
func SQLiteExists(path string) []string {
	return []string{"sh", "-c", `if [ -f "$1" ]; then wc -c < "$1"; else echo 0; fi`, "sh", path}
}

// SQLitePut writes a database copy from stdin to $1, atomically: beside it
// first, then renamed over it, so a reader never sees half a file.
func SQLitePut(path string) []string {
	return []string{"sh", "-c", `t="$1.lifeboat-tmp"; cat > "$t" && mv "$t" "$1" && rm -f "$1-wal" "$1-shm" "$1-journal"`, "sh", path}
}

// MongoCollections counts the collections outside admin, config and local.
func MongoCollections() []string {
	return []string{"sh", "-c", mongoAuth() + `out=$(mongosh --quiet $auth --eval 'let n = 0; db.adminCommand({listDatabases: 1}).databases.forEach(d => { if (!["admin", "config", "local"].includes(d.name)) n += db.getSiblingDB(d.name).getCollectionNames().length }); print(n)'); rc=$?; rm -f "$cfg"; echo "$out"; exit $rc`}
}
