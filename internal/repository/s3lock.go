package repository

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// ErrNoObjectLock means a bucket was not created with S3 object lock.
var ErrNoObjectLock = errors.New("the bucket has no object lock")

// LockProbe looks at the object lock of an S3 copy with plain S3 calls:
// what kopia's storage does not expose (the bucket's lock, each object's
// retention, versions).
type LockProbe struct {
	cli *minio.Client
	loc S3Location
}

// OpenLockProbe opens the S3 location to, with the endpoint and keys from
// the environment, as the repository's own storage does.
func OpenLockProbe(ctx context.Context, to string) (*LockProbe, error) {
	l, err := ParseS3(to)
	if err != nil {
		return nil, err
	}
	cli, err := l.client(os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN"))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l, err)
	}
	ok, err := cli.BucketExists(ctx, l.Bucket)
	switch {
	case err != nil:
		return nil, fmt.Errorf("open %s: %w", l, err)
	case !ok:
		return nil, fmt.Errorf("open %s: bucket %q does not exist", l, l.Bucket)
	}
	return &LockProbe{cli: cli, loc: l}, nil
}

// Location is the probed copy.
func (p *LockProbe) Location() S3Location { return p.loc }

// BucketLock reports the bucket's default lock mode ("" when it has none),
// or ErrNoObjectLock.
func (p *LockProbe) BucketLock(ctx context.Context) (string, error) {
	enabled, mode, _, _, err := p.cli.GetObjectLockConfig(ctx, p.loc.Bucket)
	if err != nil {
		if minio.ToErrorResponse(err).Code == "ObjectLockConfigurationNotFoundError" {
			return "", fmt.Errorf("bucket %q of %s: %w: object lock can only be turned on when a bucket is created: make a new bucket with it", p.loc.Bucket, p.loc, ErrNoObjectLock)
		}
		return "", fmt.Errorf("read the object lock of bucket %q of %s: %w", p.loc.Bucket, p.loc, err)
	}
	if enabled != "Enabled" {
		return "", fmt.Errorf("bucket %q of %s: %w (%q)", p.loc.Bucket, p.loc, ErrNoObjectLock, enabled)
	}
	if mode == nil {
		return "", nil
	}
	return strings.ToLower(string(*mode)), nil
}

// Retention is the lock of one object of the copy.
type Retention struct {
	Key   string    // under the copy's prefix
	Mode  string    // governance, compliance, or "" when not locked
	Until time.Time // zero when not locked
	Err   error     // the retention could not be read
}

// Retentions reads the retention of every current object of the copy,
// parallel at a time, and calls fn for each, one at a time.
func (p *LockProbe) Retentions(ctx context.Context, parallel int, fn func(Retention)) error {
	keys := make(chan string)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range max(parallel, 1) {
		wg.Go(func() {
			for k := range keys {
				r := Retention{Key: strings.TrimPrefix(k, p.loc.Prefix)}
				mode, until, err := p.cli.GetObjectRetention(ctx, p.loc.Bucket, k, "")
				switch {
				case err != nil && minio.ToErrorResponse(err).Code == "NoSuchObjectLockConfiguration":
				case err != nil:
					r.Err = err
				default:
					if mode != nil {
						r.Mode = strings.ToLower(string(*mode))
					}
					if until != nil {
						r.Until = *until
					}
				}
				mu.Lock()
				fn(r)
				mu.Unlock()
			}
		})
	}
	var err error
	for obj := range p.cli.ListObjects(ctx, p.loc.Bucket, minio.ListObjectsOptions{Prefix: p.loc.Prefix, Recursive: true}) {
		if obj.Err != nil {
			err = fmt.Errorf("list %s: %w", p.loc, obj.Err)
			break
		}
		keys <- obj.Key
	}
	close(keys)
	wg.Wait()
	return err
}

// Canary is what the server did with a locked canary object.
type Canary struct {
	Key string
	// Locked: the server accepted the canary with retention.
	Locked bool
	// DeleteRefused: deleting the canary's version was refused, with
	// DeleteError the server's answer.
	DeleteRefused bool
	DeleteError   string
	// BypassRefused: for a governance lock, deleting with the header that
	// bypasses governance was refused too (these keys lack the permission).
	BypassRefused bool
	// Kept: after the delete attempts and an overwrite, the canary's
	// version still exists with its content.
	Kept bool
}

// canaryKey names a canary beside the copy, never inside its prefix:
// kopia would list it as a blob of the repository, and replicate --delete
// would try to remove it.
func (p *LockProbe) canaryKey() (string, error) {
	if p.loc.Prefix == "" {
		return "", errors.New("the copy is the whole bucket: give it a prefix (s3://BUCKET/PREFIX) so the canary can sit beside it")
	}
	var b [6]byte
	rand.Read(b[:])
	return strings.TrimSuffix(p.loc.Prefix, "/") + ".lifeboat-canary/" + time.Now().UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:]), nil
}

// TryCanary writes a small object locked in mode for period, then tries
// what an attacker with these keys would: delete its version (for
// governance also with the bypass header), overwrite it. It reports what
// the server allowed; an error only when the canary could not be tried.
func (p *LockProbe) TryCanary(ctx context.Context, mode string, period time.Duration) (Canary, error) {
	key, err := p.canaryKey()
	if err != nil {
		return Canary{}, err
	}
	c := Canary{Key: key}
	body := []byte("lifeboat canary " + key + "\n")
	rm := minio.RetentionMode(strings.ToUpper(mode))
	info, err := p.cli.PutObject(ctx, p.loc.Bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{
		Mode: rm, RetainUntilDate: time.Now().Add(period).UTC(), SendContentMd5: true, ContentType: "text/plain"})
	if err != nil {
		return c, fmt.Errorf("write a canary with a %s lock: %w", mode, err)
	}
	c.Locked = info.VersionID != ""
	err = p.cli.RemoveObject(ctx, p.loc.Bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID})
	c.DeleteRefused, c.DeleteError = err != nil, errText(err)
	if rm == minio.Governance {
		err = p.cli.RemoveObject(ctx, p.loc.Bucket, key, minio.RemoveObjectOptions{VersionID: info.VersionID, GovernanceBypass: true})
		c.BypassRefused = err != nil
	}
	other := []byte("overwritten\n")
	if _, err := p.cli.PutObject(ctx, p.loc.Bucket, key, bytes.NewReader(other), int64(len(other)), minio.PutObjectOptions{SendContentMd5: true}); err != nil {
		// Refusing the overwrite outright keeps the canary too.
		c.DeleteError += "; overwrite: " + errText(err)
	}
	got, err := p.readVersion(ctx, key, info.VersionID)
	c.Kept = err == nil && bytes.Equal(got, body)
	return c, nil
}

func (p *LockProbe) readVersion(ctx context.Context, key, version string) ([]byte, error) {
	if version == "" {
		return nil, errors.New("no version: the bucket does not keep versions")
	}
	obj, err := p.cli.GetObject(ctx, p.loc.Bucket, key, minio.GetObjectOptions{VersionID: version})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
