package repository

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/filesystem"
)

// Kind says where a repository lives.
type Kind string

// The kinds of location.
const (
	KindFile Kind = "file"
	KindS3   Kind = "s3"
)

// Location is where a repository lives, resolved from what the user wrote:
// a local directory, or a bucket and prefix on S3-compatible storage. It
// holds no secret: S3 keys are read from the environment each time the
// storage is opened, so nothing that prints or persists a Location can
// leak them.
type Location struct {
	Kind Kind
	Path string     // KindFile: absolute and clean
	S3   S3Location // KindS3: bucket, prefix and endpoint
}

// ParseLocation resolves a repository location: "" (the default path), a
// local path (relative ones are made absolute, file:// is accepted), or
// s3://BUCKET[/PREFIX] with the endpoint from LIFEBOAT_S3_ENDPOINT.
func ParseLocation(s string) (Location, error) {
	if strings.HasPrefix(s, "s3://") {
		l, err := ParseS3(s)
		return Location{Kind: KindS3, S3: l}, err
	}
	p, err := normalizePath(s)
	return Location{Kind: KindFile, Path: p}, err
}

// String is the location as messages show it: the path, or
// s3://BUCKET/PREFIX.
func (l Location) String() string {
	if l.Kind == KindS3 {
		return l.S3.URL()
	}
	return l.Path
}

// Long is String with the S3 endpoint, for errors about reaching storage.
func (l Location) Long() string {
	if l.Kind == KindS3 {
		return l.S3.String()
	}
	return l.Path
}

// stateKey names the location's connection state. An S3 location's
// includes the endpoint: the same bucket name on two servers is two
// repositories, and must not share a connection config or a cache.
// A point-in-time view's is apart from the current one's: kopia caches
// indexes and the format blob, and one view must never see another's.
func (l Location) stateKey() string {
	if l.pointInTime() {
		return l.Long() + " as of " + l.S3.PointInTime.UTC().Format(time.RFC3339Nano)
	}
	return l.Long()
}

func (l Location) pointInTime() bool {
	return l.Kind == KindS3 && l.S3.PointInTime != nil && !l.S3.PointInTime.IsZero()
}

func (l Location) storage(ctx context.Context, create bool) (blob.Storage, error) {
	if l.Kind == KindS3 {
		return l.S3.Storage(ctx, create) // its errors name bucket and endpoint
	}
	st, err := openPackFiles(ctx, &filesystem.Options{Path: l.Path}, create)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.Path, err)
	}
	return st, nil
}

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
		// Not echoed: a URL may carry credentials.
		return "", fmt.Errorf("repository location: use a local path or s3://BUCKET/PREFIX")
	}
	loc = strings.TrimPrefix(loc, "file://")
	abs, err := filepath.Abs(loc)
	if err != nil {
		return "", fmt.Errorf("repository path %q: %w", loc, err)
	}
	return filepath.Clean(abs), nil
}
