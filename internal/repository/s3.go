package repository

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/s3"
)

// s3Type is lifeboat's own storage type for kopia's connection config. It
// wraps kopia's S3 storage so that the config written to disk holds the
// bucket, prefix and endpoint but never the keys: those are read from the
// environment each time the repository is opened.
const s3Type = "lifeboat-s3"

// S3Location is an S3-compatible bucket and prefix.
type S3Location struct {
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix,omitempty"`
	Endpoint string `json:"endpoint"`
	NoTLS    bool   `json:"no_tls,omitempty"`
	Insecure bool   `json:"insecure,omitempty"` // TLS without verifying the certificate
	Region   string `json:"region,omitempty"`
}

func init() {
	blob.AddSupportedStorage(s3Type, S3Location{}, func(ctx context.Context, l *S3Location, isCreate bool) (blob.Storage, error) {
		return l.Storage(ctx, isCreate)
	})
}

// ErrS3Credentials means the S3 keys are not in the environment.
var ErrS3Credentials = errors.New("no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and LIFEBOAT_S3_ENDPOINT for a server other than AWS)")

// IsS3 reports whether a repository location names S3.
func IsS3(loc string) bool { return strings.HasPrefix(loc, "s3://") }

// ParseS3 reads s3://BUCKET[/PREFIX]. The endpoint comes from
// LIFEBOAT_S3_ENDPOINT: HOST:PORT or https://HOST means TLS, http://HOST
// plain HTTP (a server on the same host); AWS when unset.
func ParseS3(loc string) (S3Location, error) {
	u, err := url.Parse(loc)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return S3Location{}, fmt.Errorf("repository %q: write s3://BUCKET/PREFIX", loc)
	}
	l := S3Location{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Region: os.Getenv("AWS_REGION")}
	if l.Prefix != "" {
		l.Prefix += "/"
	}
	ep := os.Getenv("LIFEBOAT_S3_ENDPOINT")
	switch {
	case ep == "":
		l.Endpoint = "s3.amazonaws.com"
	case strings.HasPrefix(ep, "http://"):
		l.Endpoint, l.NoTLS = strings.TrimPrefix(ep, "http://"), true
	default:
		l.Endpoint = strings.TrimPrefix(ep, "https://")
	}
	l.Endpoint = strings.TrimSuffix(l.Endpoint, "/")
	l.Insecure = os.Getenv("LIFEBOAT_S3_INSECURE") == "1"
	return l, nil
}

// String is the location without secrets, as messages and state keys use.
func (l S3Location) String() string {
	scheme := "https://"
	if l.NoTLS {
		scheme = "http://"
	}
	return "s3://" + l.Bucket + "/" + strings.TrimSuffix(l.Prefix, "/") + " at " + scheme + l.Endpoint
}

// Storage opens the bucket with the keys from the environment.
func (l *S3Location) Storage(ctx context.Context, isCreate bool) (blob.Storage, error) {
	id, key := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || key == "" {
		return nil, ErrS3Credentials
	}
	st, err := s3.New(ctx, &s3.Options{
		BucketName: l.Bucket, Prefix: l.Prefix, Endpoint: l.Endpoint, DoNotUseTLS: l.NoTLS, DoNotVerifyTLS: l.Insecure,
		AccessKeyID: id, SecretAccessKey: key, SessionToken: os.Getenv("AWS_SESSION_TOKEN"), Region: l.Region,
	}, isCreate)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l, err)
	}
	return s3Storage{Storage: st, loc: *l}, nil
}

// s3Storage reports lifeboat's own connection info: no keys.
type s3Storage struct {
	blob.Storage
	loc S3Location
}

func (s s3Storage) ConnectionInfo() blob.ConnectionInfo {
	l := s.loc
	return blob.ConnectionInfo{Type: s3Type, Config: &l}
}

// Blobs is the repository's storage, for replication.
func (r *Repository) Blobs() (blob.Storage, error) {
	dr, ok := r.rep.(interface{ BlobStorage() blob.Storage })
	if !ok {
		return nil, errors.New("replication needs a direct repository connection")
	}
	return dr.BlobStorage(), nil
}

// TargetStorage opens an s3:// replication target.
func TargetStorage(ctx context.Context, to string) (blob.Storage, S3Location, error) {
	l, err := ParseS3(to)
	if err != nil {
		return nil, l, err
	}
	st, err := l.Storage(ctx, false)
	return st, l, err
}
