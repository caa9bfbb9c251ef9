package helper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/flock"
)

// Stage is a staging directory on this host for a remote engine's data,
// locked for as long as its job lives: a killed job's staging directory
// is removed by the next command (SweepStages), a live one's never.
type Stage struct {
	Dir  string
	lock *os.File
}

// NewStage makes a staging directory beneath dir, named prefix-….
func NewStage(dir, prefix string) (*Stage, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create staging area: %w", err)
	}
	d, err := os.MkdirTemp(dir, prefix+"-")
	if err != nil {
		return nil, fmt.Errorf("create staging area: %w", err)
	}
	f, err := os.OpenFile(d+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		if ok, lerr := flock.TryLock(f); !ok || lerr != nil {
			f.Close()
			err = fmt.Errorf("lock %s: %v", d, lerr)
		}
	}
	if err != nil {
		os.RemoveAll(d)
		return nil, fmt.Errorf("lock staging area: %w", err)
	}
	return &Stage{Dir: d, lock: f}, nil
}

// Remove deletes the staging directory and its lock.
func (s *Stage) Remove() error {
	err := os.RemoveAll(s.Dir)
	os.Remove(s.Dir + ".lock")
	s.lock.Close()
	return err
}

// SweepStages removes the staging directories of dead jobs beneath dir.
func SweepStages(dir string) error {
	locks, err := filepath.Glob(filepath.Join(dir, "*.lock"))
	if err != nil || len(locks) == 0 {
		return err
	}
	var errs []error
	for _, l := range locks {
		f, err := os.OpenFile(l, os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if ok, _ := flock.TryLock(f); ok {
			errs = append(errs, os.RemoveAll(strings.TrimSuffix(l, ".lock")))
			os.Remove(l)
		}
		f.Close()
	}
	return errors.Join(errs...)
}
