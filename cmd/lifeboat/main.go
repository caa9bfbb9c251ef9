// Command lifeboat protects the data of Docker hosts: volumes, containers
// and Compose projects, into a deduplicated, compressed, encrypted
// repository, and brings it back.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/lifeboat-backup/lifeboat/internal/api"
	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/drill"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/restore"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// Exit codes, as restic's: scripts tell failures apart by them.
const (
	exitOK          = 0
	exitError       = 1
	exitPartial     = 3
	exitNoRepo      = 10
	exitLocked      = 11
	exitBadPassword = 12
	exitInterrupted = 130
)

func main() {
	tuneGC()
	// The first SIGINT or SIGTERM cancels ctx; until stop() below, the
	// later ones are caught and dropped, so a second Ctrl-C cannot kill
	// lifeboat while its deferred thaw puts containers back.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	g := &globalOptions{}
	root := newRootCommand(g)
	err := root.ExecuteContext(ctx)
	code, hint := classify(ctx, err) // before stop(), which cancels ctx
	stop()
	if err != nil {
		report(g, err, code, hint)
	}
	os.Exit(code)
}

// classify maps an error to an exit code and a hint that says what to do.
func classify(ctx context.Context, err error) (int, string) {
	switch {
	case err == nil:
		return exitOK, ""
	case ctx.Err() != nil:
		return exitInterrupted, ""
	case errors.Is(err, drill.ErrFailed):
		return exitError, "the point did not prove itself: see each failed check's output above, fix the unit or its backups, and drill a new point"
	case errors.Is(err, repository.ErrNotFound):
		return exitNoRepo, "create one with `lifeboat init`, or point LIFEBOAT_REPOSITORY at an existing one"
	case errors.Is(err, repository.ErrWrongPassword):
		return exitBadPassword, "check LIFEBOAT_PASSWORD_FILE or LIFEBOAT_PASSWORD"
	case errors.Is(err, repository.ErrEmptyPassword):
		return exitBadPassword, "write the repository password into that file, or point LIFEBOAT_PASSWORD_FILE at the right one"
	case errors.Is(err, repository.ErrNoPassword):
		return exitBadPassword, ""
	case errors.Is(err, repository.ErrDamaged):
		return exitError, "run `lifeboat repair`: it rebuilds the index from the packs and says what, if anything, is lost"
	case errors.Is(err, repository.ErrNotWritable):
		return exitError, "make the repository path writable for this user, or choose another with LIFEBOAT_REPOSITORY"
	case errors.Is(err, engine.ErrUnreachable):
		return exitError, ""
	case errors.Is(err, restore.ErrNotEmpty), errors.Is(err, restore.ErrConflict), errors.Is(err, ops.ErrInvalid):
		return exitError, ""
	case errors.Is(err, backup.ErrPartial):
		return exitPartial, ""
	case errors.Is(err, unitlock.ErrBusy):
		return exitLocked, "wait until that job ends, or run again without --no-wait to wait for it"
	case errors.Is(err, repository.ErrCheckFailed):
		return exitError, "the restore points named above cannot be fully restored: back up their units again, and look at the disk or bucket that holds the repository"
	}
	return exitError, ""
}

func report(g *globalOptions, err error, code int, hint string) {
	if g.json {
		// The API's error object: scripts read one shape from both.
		b, _ := json.Marshal(api.NewError(err, hint, code))
		fmt.Fprintln(os.Stderr, string(b))
		return
	}
	if code == exitInterrupted {
		fmt.Fprintln(os.Stderr, "lifeboat: interrupted")
		return
	}
	line := "lifeboat: " + err.Error()
	if hint != "" {
		line += ": " + hint
	}
	fmt.Fprintln(os.Stderr, line)
}
