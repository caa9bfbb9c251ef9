package repository

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// DefaultPath is the embedded default repository: a data directory that
// needs no cloud account and no configuration.
func DefaultPath() string {
	if os.Geteuid() == 0 {
		return "/var/lib/lifeboat/repository"
	}
	return filepath.Join(xdgDir("XDG_DATA_HOME", ".local/share"), "lifeboat", "repository")
}

// stateDir is where the kopia connection config and content cache of one
// repository live. It is keyed by the repository's location so that several
// repositories never share a cache, and it lives outside the repository so a
// repository on shared or read-mostly storage is never written to by caches.
func stateDir(override, location string) string {
	sum := sha256.Sum256([]byte(location))
	key := hex.EncodeToString(sum[:8])
	if override != "" {
		return filepath.Join(override, key)
	}
	if os.Geteuid() == 0 {
		return filepath.Join("/var/cache/lifeboat", key)
	}
	return filepath.Join(xdgDir("XDG_CACHE_HOME", ".cache"), "lifeboat", key)
}

func xdgDir(env, fallback string) string {
	if d := os.Getenv(env); filepath.IsAbs(d) {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = os.TempDir()
	}
	return filepath.Join(home, fallback)
}

// normalizePath makes a filesystem repository location absolute: kopia
// accepts a relative path at creation and then fails on the first write.
func normalizePath(loc string) (string, error) {
	if loc == "" {
		return DefaultPath(), nil
	}
	if strings.Contains(loc, "://") && !strings.HasPrefix(loc, "file://") {
		return "", fmt.Errorf("repository %q: only local paths are supported so far (s3:// comes with offsite replication)", loc)
	}
	loc = strings.TrimPrefix(loc, "file://")
	abs, err := filepath.Abs(loc)
	if err != nil {
		return "", fmt.Errorf("repository path %q: %w", loc, err)
	}
	return filepath.Clean(abs), nil
}
