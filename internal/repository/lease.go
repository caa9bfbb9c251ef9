package repository

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/format"
)

// LeaseStore is the repository's storage as the place where hosts that
// share it keep the leases of their units' locks (package unitlock's
// Store). The records are small blobs beside kopia's, under a prefix
// kopia ignores and replication skips.
type LeaseStore struct{ st blob.Storage }

// Leases is the repository's lease store.
func (r *Repository) Leases() (LeaseStore, error) {
	if r.loc.pointInTime() {
		// A view of the past is read-only, and no job writes the past.
		return LeaseStore{}, fmt.Errorf("lease store: %w", ErrPointInTime)
	}
	st, err := r.Blobs()
	if err != nil {
		return LeaseStore{}, fmt.Errorf("lease store: %w", err)
	}
	return LeaseStore{st: st}, nil
}

// Get reads a record; a missing one wraps fs.ErrNotExist.
func (s LeaseStore) Get(ctx context.Context, name string) ([]byte, error) {
	var buf outBuffer
	err := s.st.GetBlob(ctx, blob.ID(name), 0, -1, &buf)
	if errors.Is(err, blob.ErrBlobNotFound) {
		return nil, fmt.Errorf("lease %s: %w", name, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read lease %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// Put writes a record whole, replacing what was there.
func (s LeaseStore) Put(ctx context.Context, name string, b []byte) error {
	if err := s.st.PutBlob(ctx, blob.ID(name), bytesBlob(b), blob.PutOptions{}); err != nil {
		return fmt.Errorf("write lease %s: %w", name, err)
	}
	return nil
}

// Delete removes a record.
func (s LeaseStore) Delete(ctx context.Context, name string) error {
	err := s.st.DeleteBlob(ctx, blob.ID(name))
	if errors.Is(err, blob.ErrBlobNotFound) {
		return fmt.Errorf("lease %s: %w", name, fs.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("delete lease %s: %w", name, err)
	}
	return nil
}

// OpenLeases opens the lease store of the repository opts names without
// opening the repository: no password, no key derivation (kopia's scrypt
// takes a third of a second), so that a job takes its unit's lease while
// the repository opens beside it. It fails where there is no repository
// yet, and for a view of the past; close releases the storage.
func OpenLeases(ctx context.Context, opts Options) (st LeaseStore, close func(), err error) {
	if !opts.PointInTime.IsZero() {
		return LeaseStore{}, nil, fmt.Errorf("lease store: %w", ErrPointInTime)
	}
	loc, err := ParseLocation(opts.Location)
	if err != nil {
		return LeaseStore{}, nil, err
	}
	if loc.Kind == KindFile {
		// kopia's filesystem storage writes its sharding file on open:
		// only where a repository already is.
		if _, err := os.Stat(filepath.Join(loc.Path, "kopia.repository.f")); err != nil {
			return LeaseStore{}, nil, fmt.Errorf("lease store: no repository at %s: %w", loc, err)
		}
	}
	bs, err := loc.storage(ctx, false)
	if err != nil {
		return LeaseStore{}, nil, fmt.Errorf("lease store: %w", err)
	}
	closeIt := func() { _ = bs.Close(context.WithoutCancel(ctx)) }
	// Leases go only where a repository is: never into a mistyped path.
	if _, err := bs.GetMetadata(ctx, format.KopiaRepositoryBlobID); err != nil {
		closeIt()
		return LeaseStore{}, nil, fmt.Errorf("lease store: no repository at %s: %w", loc, err)
	}
	return LeaseStore{st: bs}, closeIt, nil
}

// MayPrompt reports whether opening the repository may ask for its
// password on the terminal: no password file nor value given, none beside
// a local repository, and a prompt to ask with.
func (o Options) MayPrompt() bool {
	p := o.Password
	if p.File != "" || !p.Value.IsZero() || p.Prompt == nil {
		return false
	}
	loc, err := ParseLocation(o.Location)
	if err != nil {
		return true
	}
	if loc.Kind == KindFile {
		if _, err := os.Stat(PasswordFileFor(loc.Path)); err == nil {
			return false
		}
	}
	return true
}
