package repository

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/maintenance"
)

// ErrObjectLock marks an object lock asked of a repository that cannot
// take it.
var ErrObjectLock = errors.New("repository object lock")

// minRepoLockPeriod is the shortest lock of a repository made on S3:
// full maintenance extends the locks once a day, so a lock must outlast
// that day by another (kopia refuses to extend shorter ones).
const minRepoLockPeriod = 48 * time.Hour

// repoLock checks the object lock opts ask Init for and returns kopia's
// retention for the repository's format: every blob kopia writes then
// carries it (packs, indexes, the format), and maintenance extends it.
func repoLock(ctx context.Context, opts Options, loc Location) (blob.RetentionMode, time.Duration, error) {
	if opts.LockMode == "" {
		return "", 0, nil
	}
	mode := blob.RetentionMode(strings.ToUpper(opts.LockMode))
	switch {
	case !mode.IsValid():
		return "", 0, fmt.Errorf("%w: lock mode %q: use governance or compliance", ErrObjectLock, opts.LockMode)
	case loc.Kind != KindS3:
		return "", 0, fmt.Errorf("%w: a lock needs a repository on S3 (-r s3://BUCKET/PREFIX, in a bucket made with object lock); %s is a local directory", ErrObjectLock, loc)
	case opts.LockPeriod < minRepoLockPeriod:
		return "", 0, fmt.Errorf("%w: lock period %v: give at least 2d, since maintenance extends the locks once a day", ErrObjectLock, opts.LockPeriod)
	}
	// kopia would retry each refused write ten times before saying the
	// bucket has no lock; one request says it at once.
	probe, err := OpenLockProbe(ctx, loc.String())
	if err != nil {
		return "", 0, err
	}
	if _, err := probe.BucketLock(ctx); err != nil {
		return "", 0, fmt.Errorf("create a locked repository: %w", err)
	}
	return mode, opts.LockPeriod, nil
}

// extendLocks has full maintenance extend the object locks of a
// repository whose format locks its blobs: without it, the locks of the
// points retention keeps would end one period after they were written.
func extendLocks(ctx context.Context, w repo.DirectRepositoryWriter, p *maintenance.Params) (bool, error) {
	cfg, err := w.FormatManager().BlobCfgBlob(ctx)
	if err != nil {
		return false, fmt.Errorf("read the repository's blob configuration: %w", err)
	}
	if !cfg.IsRetentionEnabled() || p.ExtendObjectLocks {
		return false, nil
	}
	p.ExtendObjectLocks = true
	return true, nil
}

// KopiaLocks reports whether kopia locks the blob named key in a
// repository whose format asks for locks: packs, indexes and the format
// blobs. It does not lock its logs, maintenance schedule or session
// markers, which no point needs.
func KopiaLocks(key string) bool {
	for _, p := range repo.GetLockingStoragePrefixes() {
		if strings.HasPrefix(key, string(p)) {
			return true
		}
	}
	return false
}
