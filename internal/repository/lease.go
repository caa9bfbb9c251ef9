package repository

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/kopia/kopia/repo/blob"
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
