// Package helper runs the short-lived helper containers that move a
// remote engine's data through its archive endpoints, and makes sure none
// outlives the lifeboat that made it.
//
// Each helper is journalled before it is created: a file named after the
// container in the helper journal, holding the engine's address, on which
// its owner holds an exclusive flock(2) for as long as it lives. The
// kernel drops the lock however the owner dies, so the next lifeboat
// command that can take the lock removes the container (if the engine
// ever made it) and then the entry. Helpers of a live lifeboat, which
// holds their locks, are left alone.
package helper

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/failpoint"
	"github.com/lifeboat-backup/lifeboat/internal/flock"
)

// namePrefix starts every helper's name, and every journal entry's.
const namePrefix = "lifeboat-helper-"

// entry is one helper's journal record.
type entry struct {
	Name       string    `json:"name"`
	EngineHost string    `json:"engine_host"`
	What       string    `json:"what"`
	Created    time.Time `json:"created"`
	PID        int       `json:"pid"` // informational: PIDs are reused
}

// Helper is one live helper container.
type Helper struct {
	eng  *engine.Client
	Name string
	ID   string
	lock *os.File // the journal entry, locked
	path string
	log  *slog.Logger
}

// Spec is what to mount and from which image.
type Spec struct {
	Image    string
	Volume   string
	Bind     string
	ReadOnly bool
	What     string // for messages: "volume pgdata"
}

// New journals and creates a helper container on eng. dir is the helper
// journal (STATE_DIR/helpers); it must be set.
func New(ctx context.Context, eng *engine.Client, dir string, spec Spec, log *slog.Logger) (*Helper, error) {
	if dir == "" {
		return nil, errors.New("helper journal directory not set")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create helper journal %s: %w", dir, err)
	}
	name := namePrefix + randomHex(6)
	h := &Helper{eng: eng, Name: name, path: filepath.Join(dir, name+".json"), log: log}
	if err := h.journal(spec.What); err != nil {
		return nil, err
	}
	failpoint.Hit("helper-journalled")
	id, err := eng.CreateHelper(ctx, engine.HelperSpec{Name: name, Image: spec.Image, Volume: spec.Volume, Bind: spec.Bind,
		ReadOnly: spec.ReadOnly, Owner: "1"})
	if err != nil {
		// The create may have reached the engine before failing here:
		// remove by name, which is no error when it never existed.
		return nil, errors.Join(err, h.Remove(context.WithoutCancel(ctx)))
	}
	h.ID = id
	log.Debug("helper container created", "helper", name, "what", spec.What, "image", spec.Image)
	failpoint.Hit("helper-created")
	return h, nil
}

// journal writes and locks the entry durably before the container exists.
func (h *Helper) journal(what string) error {
	b, err := json.Marshal(entry{Name: h.Name, EngineHost: h.eng.Host(), What: what, Created: time.Now().UTC(), PID: os.Getpid()})
	if err != nil {
		return err
	}
	// Locked and written under a name the reaper skips, then renamed: the
	// reaper never sees an entry its live owner has not locked yet. The
	// lock belongs to the open file, so it survives the rename.
	tmp := h.path + ".new"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("journal helper: %w", err)
	}
	if ok, err := flock.TryLock(f); !ok || err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("lock helper journal entry %s: %v", tmp, err)
	}
	if _, err = f.Write(b); err == nil {
		err = f.Sync()
	}
	if err == nil {
		err = os.Rename(tmp, h.path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(h.path))
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("journal helper %s: %w", h.path, err)
	}
	h.lock = f
	return nil
}

// Remove removes the container, then its journal entry. It survives a
// cancelled ctx: a helper must never be left for lack of a context. On
// failure the entry stays for the next command.
func (h *Helper) Remove(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if err := h.eng.RemoveHelper(rctx, h.Name); err != nil {
		return fmt.Errorf("%w (the next lifeboat command retries)", err)
	}
	err := os.Remove(h.path)
	if h.lock != nil {
		h.lock.Close()
		h.lock = nil
	}
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove helper journal entry: %w", err)
	}
	return nil
}

// Archive is a tar stream of rel (a path beneath the mount, "." for all)
// as the engine packs it.
func (h *Helper) Archive(ctx context.Context, rel string) (io.ReadCloser, error) {
	return h.eng.ArchiveFrom(ctx, h.ID, filepath.Join(engine.HelperMountPath, rel)+"/.")
}

// Put unpacks a tar stream whose names start with MountDir into the
// container's root.
func (h *Helper) Put(ctx context.Context, r io.Reader) error {
	return h.eng.ArchiveTo(ctx, h.ID, "/", r)
}

// MountDir is the name, relative to the container's root, that entries
// written with Put start with.
var MountDir = strings.TrimPrefix(engine.HelperMountPath, "/")

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
