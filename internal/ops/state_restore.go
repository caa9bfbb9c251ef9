package ops

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// secretKeys are the config's settings that hold secrets in clear, by
// path ("*" for every item of a list). Notification URLs carry tokens
// and passwords; API tokens are stored hashed (api.tokens[].sha256) and
// stay.
var secretKeys = [][]string{
	{"offsite", "access_key_id"},
	{"offsite", "secret_access_key"},
	{"webhook", "secret"},
	{"notify", "targets", "*", "url"},
	{"pings", "url"},
}

// RedactConfig removes the settings that hold secrets from a config file
// and names those it removed. Comments and the order of the rest stay.
func RedactConfig(b []byte) ([]byte, []string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, nil, fmt.Errorf("parse: %w", err)
	}
	if len(doc.Content) == 0 {
		return b, nil, nil // empty: nothing to hide
	}
	var left []string
	for _, path := range secretKeys {
		left = append(left, dropKey(doc.Content[0], path, "")...)
	}
	if len(left) == 0 {
		return b, nil, nil
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, nil, fmt.Errorf("encode: %w", err)
	}
	return out.Bytes(), left, nil
}

// dropKey removes path below n and says which settings it removed.
func dropKey(n *yaml.Node, path []string, at string) []string {
	if len(path) == 0 || n == nil {
		return nil
	}
	if path[0] == "*" {
		if n.Kind != yaml.SequenceNode {
			return nil
		}
		var out []string
		for i, item := range n.Content {
			out = append(out, dropKey(item, path[1:], at+"["+strconv.Itoa(i)+"]")...)
		}
		return out
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != path[0] {
			continue
		}
		name := path[0]
		if at != "" {
			name = at + "." + name
		}
		if len(path) > 1 {
			return dropKey(n.Content[i+1], path[1:], name)
		}
		if n.Content[i+1].Value == "" && n.Content[i+1].Kind == yaml.ScalarNode {
			return nil // set to nothing: no secret
		}
		n.Content = append(n.Content[:i], n.Content[i+2:]...)
		return []string{name}
	}
	return nil
}

// StateRestore says what recover did with lifeboat's own state.
type StateRestore struct {
	Point string `json:"point,omitempty"`
	StateManifest
	// Config is where the config file was written, Jobs where the job
	// history was; "" when the point had none.
	Config string `json:"config,omitempty"`
	Jobs   string `json:"jobs,omitempty"`
	// Skipped says why nothing was restored.
	Skipped string `json:"skipped,omitempty"`
}

// restoreState writes a state point's config file and job history into
// dir. A file that exists already is not replaced: the state of a host
// that is not fresh is its own; one equal to the point's is left as it
// is, so recover can run again. Every file is checked before any is
// written.
func restoreState(ctx context.Context, repo *repository.Repository, p repository.Point, dir string) (StateRestore, error) {
	res := StateRestore{Point: p.ID}
	b, err := repo.ReadFile(ctx, p.ID, stateManifest)
	if err != nil {
		return res, fmt.Errorf("read %s: %w", stateManifest, err)
	}
	if err := json.Unmarshal(b, &res.StateManifest); err != nil {
		return res, fmt.Errorf("decode %s: %w", stateManifest, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, fmt.Errorf("state directory: %w", err)
	}
	type file struct{ from, to string }
	var files []file
	if res.HasConfig {
		files = append(files, file{stateConfig, filepath.Join(dir, RecoveredConfig)})
	}
	if ok, _ := repo.Has(ctx, p.ID, stateJobs); ok {
		files = append(files, file{stateJobs, filepath.Join(dir, jobsFile)})
	}
	data, same := make([][]byte, len(files)), make([]bool, len(files))
	for i, f := range files {
		if data[i], err = repo.ReadFile(ctx, p.ID, f.from); err != nil {
			return res, fmt.Errorf("read %s: %w", f.from, err)
		}
		// The same file is a recover run again (after units failed):
		// done already. Another one is this host's own state.
		if have, err := os.ReadFile(f.to); err == nil && !bytes.Equal(have, data[i]) {
			return res, fmt.Errorf("%w: %s exists and differs from the copy's: this state directory is not fresh; move it away or recover with --no-state", ErrInvalid, f.to)
		} else if err == nil {
			same[i] = true
		} else if !errors.Is(err, os.ErrNotExist) {
			return res, fmt.Errorf("state: %w", err)
		}
	}
	for i, f := range files {
		if same[i] {
			continue
		}
		if err := writeNew(f.to, data[i]); err != nil {
			return res, err
		}
	}
	if res.HasConfig {
		res.Config = filepath.Join(dir, RecoveredConfig)
	}
	if len(files) > 0 && files[len(files)-1].from == stateJobs {
		res.Jobs = filepath.Join(dir, jobsFile)
	}
	return res, nil
}

// writeNew writes a file that must not exist, atomically and durably: a
// kill leaves either nothing or the whole file (and maybe a stray
// temporary one), never a torn config.
func writeNew(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// A link, unlike a rename, fails when the name was taken meanwhile.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s appeared while recovering: not replaced", ErrInvalid, path)
		}
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
