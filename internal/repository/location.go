package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
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
		return "", fmt.Errorf("repository %q: use a local path or s3://BUCKET/PREFIX", loc)
	}
	loc = strings.TrimPrefix(loc, "file://")
	abs, err := filepath.Abs(loc)
	if err != nil {
		return "", fmt.Errorf("repository path %q: %w", loc, err)
	}
	return filepath.Clean(abs), nil
}

// location is a resolved repository location: a local path, or S3.
type location struct {
	display string      // the path, or the S3 location without secrets
	path    string      // local path; "" for S3
	s3      *S3Location // nil for a local path
}

func resolveLocation(loc string) (location, error) {
	if IsS3(loc) {
		l, err := ParseS3(loc)
		if err != nil {
			return location{}, err
		}
		return location{display: loc, s3: &l}, nil
	}
	p, err := normalizePath(loc)
	return location{display: p, path: p}, err
}

func (l location) storage(ctx context.Context, create bool) (blob.Storage, error) {
	if l.s3 != nil {
		return l.s3.Storage(ctx, create)
	}
	return filesystem.New(ctx, &filesystem.Options{Path: l.path}, create)
}
