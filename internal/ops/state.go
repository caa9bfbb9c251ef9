package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/source"
	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// Lifeboat's own state is a unit of its own, so that a host recovered
// from an offsite copy is the appliance it was.
const (
	StateUnit = "lifeboat/state"
	StateKind = "lifeboat"
	// The point's tree: the daemon's config file with its secrets left
	// out, its job history (whose upkeep jobs are also the schedule's
	// state), and what the point holds.
	stateConfig   = "state/lifeboat.yaml"
	stateJobs     = "state/jobs.jsonl"
	stateManifest = "state/state.json"
	// jobsFile is the job history in the state directory (the daemon's).
	jobsFile = "jobs.jsonl"
	// RecoveredConfig is where recover writes the config file, in the
	// state directory.
	RecoveredConfig = "lifeboat.yaml"
)

// StateBackupRequest asks for a restore point of lifeboat's own state.
type StateBackupRequest struct {
	// ConfigPath is the daemon's config file; "" when it runs without one.
	ConfigPath string `json:"config_path,omitempty"`
	Trigger    string `json:"-"`
	NoWait     bool   `json:"-"`
}

// StateManifest says what a state point holds, and what it left out.
type StateManifest struct {
	ConfigPath string `json:"config_path,omitempty"` // where the config file was
	HasConfig  bool   `json:"has_config"`
	Jobs       int    `json:"jobs"` // job records in jobs.jsonl
	// SecretsLeftOut name the config's settings that held secrets and
	// are not in the point: they must be given again on the new host.
	SecretsLeftOut []string `json:"secrets_left_out,omitempty"`
}

// StateBackupResult is the point made.
type StateBackupResult struct {
	repository.Point
	StateManifest
}

// BackupState makes a restore point of lifeboat's own state: the config
// file without its secrets (API tokens are kept only as the hashes the
// file already holds) and the job history. The API token file, the
// repository password and S3 keys are never read.
func BackupState(ctx context.Context, env *Env, req StateBackupRequest, obs Observer) (StateBackupResult, error) {
	if req.Trigger == "" {
		req.Trigger = "manual"
	}
	cfg, sm, err := readState(env.StateDir, req.ConfigPath)
	if err != nil {
		return StateBackupResult{}, err
	}
	jobs, err := readJobs(filepath.Join(env.StateDir, jobsFile))
	if err != nil {
		return StateBackupResult{}, err
	}
	sm.Jobs = bytes.Count(jobs, []byte("\n"))
	repo, err := env.Repository(ctx, true)
	if err != nil {
		return StateBackupResult{}, err
	}
	lock, err := unitlock.Acquire(ctx, env.LockDir(), StateUnit, unitlock.Options{Wait: !req.NoWait, Operation: unitlock.Backup, Job: obs.Job, OnWait: obs.Waiting})
	if err != nil {
		return StateBackupResult{}, err
	}
	defer func() {
		if err := lock.Release(); err != nil {
			obs.log(env).Warn("unit lock not released cleanly", "unit", StateUnit, "err", err)
		}
	}()
	root, err := stateTree(env, sm, cfg, jobs)
	if err != nil {
		return StateBackupResult{}, err
	}
	p, err := repo.Snapshot(ctx, repository.SnapshotOptions{Unit: StateUnit, Kind: StateKind, Trigger: req.Trigger, Progress: obs.progress("backup " + StateUnit)},
		func(ctx context.Context, up repository.Uploader) (repository.Labels, error) {
			return repository.Labels{Consistency: "none"}, up.Upload(ctx, root)
		})
	if err != nil {
		return StateBackupResult{}, fmt.Errorf("back up %s: %w", StateUnit, err)
	}
	return StateBackupResult{Point: p, StateManifest: sm}, nil
}

// readState reads the config file, without its secrets.
func readState(stateDir, configPath string) ([]byte, StateManifest, error) {
	sm := StateManifest{}
	if configPath == "" {
		return nil, sm, nil
	}
	abs, err := filepath.Abs(configPath)
	if err != nil {
		return nil, sm, fmt.Errorf("config %s: %w", configPath, err)
	}
	b, err := os.ReadFile(abs)
	if err != nil {
		return nil, sm, fmt.Errorf("read config: %w", err)
	}
	clean, left, err := RedactConfig(b)
	if err != nil {
		return nil, sm, fmt.Errorf("config %s: %w", abs, err)
	}
	sm.ConfigPath, sm.HasConfig, sm.SecretsLeftOut = abs, true, left
	return clean, sm, nil
}

// readJobs reads the job history as far as its last whole line: the
// daemon may be appending to it.
func readJobs(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read job history: %w", err)
	}
	return b[:bytes.LastIndexByte(b, '\n')+1], nil
}

func stateTree(env *Env, sm StateManifest, cfg, jobs []byte) (source.Entry, error) {
	now := time.Now().UTC()
	host, _ := os.Hostname()
	m := layout.Manifest{FormatVersion: layout.FormatVersion, Lifeboat: env.Version, Host: host, Unit: StateUnit, Kind: StateKind, Time: now, Consistency: "none"}
	mb, err := m.Marshal()
	if err != nil {
		return nil, err
	}
	sb, err := json.MarshalIndent(sm, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode state manifest: %w", err)
	}
	files := []source.Entry{source.Bytes(filepath.Base(stateManifest), append(sb, '\n'), 0o600, now)}
	if sm.HasConfig {
		files = append(files, source.Bytes(filepath.Base(stateConfig), cfg, 0o600, now))
	}
	if jobs != nil {
		files = append(files, source.Bytes(filepath.Base(stateJobs), jobs, 0o600, now))
	}
	return source.Dir("", now, source.Bytes(layout.ManifestPath, mb, 0o644, now), source.Dir("state", now, files...)), nil
}
