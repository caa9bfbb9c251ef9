package consistency

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// Execer runs a command in a container to its end; engine.Client is one.
type Execer interface {
	Exec(ctx context.Context, id string, spec engine.ExecSpec, stdin io.Reader, stdout, stderr io.Writer) (engine.ExecResult, error)
}

// Plan is the dumps of one running database container of profile: for
// PostgreSQL and MariaDB, one for each database the server lists now, so
// that every database is dumped (a failed dump fails the backup, naming
// its database) and no two share a file.
func Plan(ctx context.Context, ex Execer, profile string, ct engine.Container) ([]Command, error) {
	switch profile {
	case PostgreSQL:
		dbs, err := list(ctx, ex, ct, PostgresList())
		if err != nil {
			return nil, err
		}
		return PostgresDumps(dbs)
	case MariaDB:
		dbs, err := list(ctx, ex, ct, MariaDBList())
		if err != nil {
			return nil, err
		}
		return MariaDBDumps(dbs), nil
	case Redis:
		return RedisDumps(), nil
	case SQLite:
		files := SQLiteFiles(ct.Labels)
		if len(files) == 0 {
			return nil, fmt.Errorf("container %s: %s=sqlite needs the label %s=/path/to/db[,…] naming the database files", ct.Name, LabelDump, LabelSQLite)
		}
		cmds, err := SQLiteDumps(files)
		if err != nil {
			return nil, fmt.Errorf("container %s: %s: %w", ct.Name, LabelSQLite, err)
		}
		return cmds, nil
	case MongoDB:
		return MongoDumps(), nil
	}
	return nil, fmt.Errorf("container %s: profile %q has no dumps", ct.Name, profile)
}

// list runs a listing command and reads its hex-encoded names.
func list(ctx context.Context, ex Execer, ct engine.Container, cmd []string) ([]string, error) {
	out, err := Output(ctx, ex, ct.ID, cmd)
	if err != nil {
		return nil, fmt.Errorf("list the databases of %s: %w", ct.Name, err)
	}
	names, err := ParseNames(out)
	if err != nil {
		return nil, fmt.Errorf("list the databases of %s: %w", ct.Name, err)
	}
	return names, nil
}

// Output runs cmd in container id and returns its trimmed stdout; a
// non-zero exit is an error carrying the end of its stderr.
func Output(ctx context.Context, ex Execer, id string, cmd []string) (string, error) {
	var out, errb bytes.Buffer
	r, err := ex.Exec(ctx, id, engine.ExecSpec{Cmd: cmd}, nil, &out, &errb)
	if err == nil && r.ExitCode != 0 {
		msg := strings.TrimSpace(errb.String())
		if len(msg) > 500 {
			msg = "…" + msg[len(msg)-500:]
		}
		err = fmt.Errorf("exited %d: %s", r.ExitCode, msg)
	}
	return strings.TrimSpace(out.String()), err
}
