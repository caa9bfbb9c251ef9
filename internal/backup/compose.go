package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/source"
)

// Labels Compose (v1 and v2) sets on a project's containers.
const (
	labelWorkingDir  = "com.docker.compose.project.working_dir"
	labelConfigFiles = "com.docker.compose.project.config_files"
)

// maxComposeFile bounds what is read of one project file: compose files
// and .env files are small, and a label may name anything.
const maxComposeFile = 1 << 20

// composeNames are the files a project's containers name in their labels:
// the config files (v1 writes them relative to the working directory, v2
// absolute), then each working directory's .env, each once. The working
// directory is the first container's that has one.
func composeNames(cs []engine.Container) (c layout.Compose, files []string) {
	seen := map[string]bool{}
	add := func(p string, config bool) {
		if !seen[p] {
			seen[p] = true
			files = append(files, p)
			if config {
				c.ConfigFiles = append(c.ConfigFiles, p)
			}
		}
	}
	var envs []string
	for _, ct := range cs {
		wd := ct.Labels[labelWorkingDir]
		if wd != "" && !filepath.IsAbs(wd) {
			c.NotKept = append(c.NotKept, fmt.Sprintf("working directory %q of container %s is not absolute", wd, ct.Name))
			wd = ""
		}
		if wd != "" {
			wd = filepath.Clean(wd)
			if c.WorkingDir == "" {
				c.WorkingDir = wd
			}
			envs = append(envs, filepath.Join(wd, ".env"))
		}
		for _, f := range strings.Split(ct.Labels[labelConfigFiles], ",") {
			switch f = strings.TrimSpace(f); {
			case f == "":
			case filepath.IsAbs(f):
				add(filepath.Clean(f), true)
			case wd != "":
				add(filepath.Join(wd, f), true)
			default:
				c.NotKept = append(c.NotKept, fmt.Sprintf("compose file %q of container %s is relative and no working directory is labelled", f, ct.Name))
			}
		}
	}
	for _, e := range envs {
		add(e, false)
	}
	return c, files
}

// readComposeFile reads a project file the way a label may safely name
// it: beneath the working directory no symlink is followed, and only a
// regular file of at most maxComposeFile bytes is read.
func readComposeFile(workingDir, path string) (beneath.RegularFile, error) {
	rootDir, rel := filepath.Dir(path), filepath.Base(path)
	if workingDir != "" && strings.HasPrefix(path, workingDir+"/") {
		rootDir, rel = workingDir, strings.TrimPrefix(path, workingDir+"/")
	}
	r, err := beneath.Open(rootDir)
	if err != nil {
		return beneath.RegularFile{}, err
	}
	defer r.Close()
	dir, name, err := r.Parent(rel)
	if err != nil {
		return beneath.RegularFile{}, err
	}
	defer dir.Close()
	return beneath.ReadRegular(dir, name, maxComposeFile)
}

// composeSection reads the project's files for the point: the manifest's
// record and the compose/ entries, stored 0600 as a .env holds secrets.
// The env_file entries of the compose files are read too. A file that
// cannot be read is said in NotKept and does not fail the backup; a
// missing .env or env_file is normal (Compose may not need it) and not
// said.
func composeSection(cs []engine.Container, now time.Time) (*layout.Compose, []source.Entry) {
	c, names := composeNames(cs)
	if len(names) == 0 && len(c.NotKept) == 0 {
		return nil, nil
	}
	config, seen := map[string]bool{}, map[string]bool{}
	for _, cf := range c.ConfigFiles {
		config[cf] = true
	}
	for _, n := range names {
		seen[n] = true
	}
	var entries []source.Entry
	for i := 0; i < len(names); i++ { // names grows by the env_files found
		n := names[i]
		f, err := readComposeFile(c.WorkingDir, n)
		if err != nil {
			if config[n] || !beneath.IsNotExist(err) {
				c.NotKept = append(c.NotKept, fmt.Sprintf("%s: %v", n, err))
			}
			continue
		}
		if config[n] {
			for _, e := range envFiles(f.Data, c.WorkingDir) {
				if !seen[e] {
					seen[e] = true
					names = append(names, e)
				}
			}
		}
		sum := sha256.Sum256(f.Data)
		c.Files = append(c.Files, layout.ComposeFile{
			Source: n, Path: layout.ComposeFilePath(n), Bytes: int64(len(f.Data)),
			SHA256: hex.EncodeToString(sum[:]), Mode: f.Mode, UID: f.UID, GID: f.GID,
		})
		entries = append(entries, source.Bytes(layout.EscapePath(n), f.Data, 0o600, now))
	}
	return &c, entries
}

// envFiles are the env_file paths of a compose file's services (a
// string, a list of strings, or a list of {path, required}), relative
// ones against the working directory, as Compose resolves them. A path
// with a variable in it is skipped: its value is not known here. A file
// that is not YAML has none.
func envFiles(data []byte, workingDir string) []string {
	var doc struct {
		Services map[string]struct {
			EnvFile any `yaml:"env_file"`
		} `yaml:"services"`
	}
	if yaml.Unmarshal(data, &doc) != nil {
		return nil
	}
	var out []string
	add := func(p any) {
		s, ok := p.(string)
		switch {
		case !ok || s == "" || strings.Contains(s, "$"):
		case filepath.IsAbs(s):
			out = append(out, filepath.Clean(s))
		case workingDir != "":
			out = append(out, filepath.Join(workingDir, s))
		}
	}
	for _, svc := range doc.Services {
		switch v := svc.EnvFile.(type) {
		case string:
			add(v)
		case []any:
			for _, item := range v {
				if m, ok := item.(map[string]any); ok {
					add(m["path"])
				} else {
					add(item)
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
