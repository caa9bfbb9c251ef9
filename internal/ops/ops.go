// Package ops holds lifeboat's operations: typed, validated requests and
// results for backup, restore (and its dry run), replicate, check, forget
// and maintenance. The CLI, the daemon's scheduler, the REST API and the
// web UI all turn their input into these requests and call these
// functions; a front end only parses and prints. What one front end
// checks, every front end checks.
package ops

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// ErrInvalid marks a request that cannot be carried out as stated:
// options that do not go together, a value out of range, a target outside
// what is allowed. Nothing was touched. The API answers it with 400.
var ErrInvalid = errors.New("invalid request")

// Env is what operations run against. The CLI opens the repository and
// connects to the engine on first use and closes them when the command
// ends; the daemon hands out the ones it holds for its lifetime.
type Env struct {
	// Repository opens the repository, or returns the open one; write asks
	// for one that may be written to.
	Repository func(ctx context.Context, write bool) (*repository.Repository, error)
	// Engine connects to the Docker Engine, or returns the connection.
	Engine func(ctx context.Context) (*engine.Client, error)
	// Fresh, when set, gives the options of a new connection to the
	// repository with an empty cache of its own: check reads the storage
	// through it, so that damage is not hidden by what a cache holds.
	Fresh func() repository.Options
	// StateDir holds the freeze journal, the restore journal and the
	// units' locks, shared by every lifeboat process on the host.
	StateDir string
	// Confined is set for front ends that do not act as the user at a
	// shell (the API): host-directory targets must then be absolute and
	// under TargetRoots, and with no roots are refused.
	Confined    bool
	TargetRoots []string
	// Defaults are what labels override (the daemon's config file); the
	// zero value means policy.DefaultDefaults.
	Defaults policy.Defaults
	// EngineName is the engine's name in the config file; with more than
	// one engine, Host is too: points are recorded under it, so each
	// engine's units have their own history (and --from-host names it).
	// Both "" for the one engine of DOCKER_HOST.
	EngineName, Host string
	Version          string
	Log              *slog.Logger
}

// JournalDir is the freeze journal.
func (e *Env) JournalDir() string { return filepath.Join(e.StateDir, "journal") }

// MemoDir keeps what a backup's scan learnt for the next one.
func (e *Env) MemoDir() string { return filepath.Join(e.StateDir, "xattr-memo") }

// RestoreJournalDir is the restore journal.
func (e *Env) RestoreJournalDir() string { return filepath.Join(e.StateDir, "restores") }

// LockDir holds the units' locks; with many engines, each engine's in a
// directory of its own, as two engines' units of one name are two units.
func (e *Env) LockDir() string {
	if e.Host != "" {
		return filepath.Join(e.StateDir, "locks", "engine-"+e.Host)
	}
	return filepath.Join(e.StateDir, "locks")
}

// Observer is how a front end follows an operation while it runs. Every
// field may be nil.
type Observer struct {
	// Progress is called when a piece of work starts, with its counters:
	// a terminal draws them, the daemon's queue serves them to the API.
	Progress func(label string, c *progress.Counters)
	// Waiting is called when the operation waits for a unit's lock, with
	// who holds it.
	Waiting func(unitlock.Holder)
	// UnitDone is called as each unit of a backup ends, succeeded or not.
	UnitDone func(backup.Result)
	// Job is the daemon job's ID, recorded in the locks it holds.
	Job string
	// Log is the operation's log (the daemon's job log); nil: Env.Log.
	Log *slog.Logger
}

func (o Observer) progress(label string) *progress.Counters {
	c := progress.New()
	if o.Progress != nil {
		o.Progress(label, c)
	}
	return c
}

func (o Observer) log(e *Env) *slog.Logger {
	switch {
	case o.Log != nil:
		return o.Log
	case e.Log != nil:
		return e.Log
	}
	return slog.New(slog.DiscardHandler)
}
