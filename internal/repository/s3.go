package repository

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/kopia/kopia/repo/blob"
	"github.com/kopia/kopia/repo/blob/s3"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// s3Type is lifeboat's own storage type for kopia's connection config. It
// wraps kopia's S3 storage so that the config written to disk holds the
// bucket, prefix and endpoint but never the keys: kopia's own "s3" type
// would store the access and secret keys in that file in clear. Ours are
// read from the environment each time the repository is opened.
const s3Type = "lifeboat-s3"

// S3Location is an S3-compatible bucket and prefix, and the server that
// holds them. It is what kopia's connection config stores: no keys.
type S3Location struct {
	Bucket   string `json:"bucket"`
	Prefix   string `json:"prefix,omitempty"` // "" or ending in "/"
	Endpoint string `json:"endpoint"`         // HOST[:PORT]
	NoTLS    bool   `json:"no_tls,omitempty"`
	Insecure bool   `json:"insecure,omitempty"` // TLS without verifying the certificate
	Region   string `json:"region,omitempty"`
	// PointInTime, when set, is a read-only view of the bucket's object
	// versions as they were then (kopia's s3 point-in-time storage).
	PointInTime *time.Time `json:"point_in_time,omitempty"`
}

func init() {
	blob.AddSupportedStorage(s3Type, S3Location{}, func(ctx context.Context, l *S3Location, isCreate bool) (blob.Storage, error) {
		// The config was written at the first connection; certificate
		// checking and the region follow the environment of this run, so
		// that unsetting LIFEBOAT_S3_INSECURE turns checking back on.
		l.Insecure = os.Getenv("LIFEBOAT_S3_INSECURE") == "1"
		if r := os.Getenv("AWS_REGION"); r != "" {
			l.Region = r
		}
		return l.Storage(ctx, isCreate)
	})
}

// ErrS3NotConfigured means the environment lacks the S3 endpoint or keys.
var ErrS3NotConfigured = errors.New("S3 storage is not configured")

const s3EnvHelp = "LIFEBOAT_S3_ENDPOINT is HOST:PORT (TLS), http://HOST:PORT (plain HTTP) or s3.amazonaws.com; " +
	"AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are the keys of an account that may use the bucket"

// checkS3Env names the variables an S3 location still needs.
func checkS3Env(vars ...string) error {
	var missing []string
	for _, v := range vars {
		if os.Getenv(v) == "" {
			missing = append(missing, v)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("%w: set %s (%s)", ErrS3NotConfigured, strings.Join(missing, ", "), s3EnvHelp)
}

// IsS3 reports whether a repository location names S3.
func IsS3(loc string) bool { return strings.HasPrefix(loc, "s3://") }

// ParseS3 reads s3://BUCKET[/PREFIX]. The endpoint comes from
// LIFEBOAT_S3_ENDPOINT: HOST:PORT or https://HOST means TLS, http://HOST
// plain HTTP (a server on the same host). There is no default endpoint: a
// missing variable would otherwise send the keys meant for a private server
// to AWS. LIFEBOAT_S3_INSECURE=1 skips certificate verification.
func ParseS3(loc string) (S3Location, error) {
	u, err := url.Parse(loc)
	// The location is not echoed in errors: it may hold credentials.
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return S3Location{}, errors.New("S3 repository location: write s3://BUCKET/PREFIX")
	}
	if u.User != nil {
		return S3Location{}, errors.New("S3 repository location: keys do not belong in the location; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
	}
	l := S3Location{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/"), Region: os.Getenv("AWS_REGION")}
	if l.Prefix != "" {
		l.Prefix += "/"
	}
	if err := checkS3Env("LIFEBOAT_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"); err != nil {
		return l, fmt.Errorf("%s: %w", l.URL(), err)
	}
	ep := os.Getenv("LIFEBOAT_S3_ENDPOINT")
	switch {
	case strings.HasPrefix(ep, "http://"):
		l.Endpoint, l.NoTLS = strings.TrimPrefix(ep, "http://"), true
	default:
		l.Endpoint = strings.TrimPrefix(ep, "https://")
	}
	l.Endpoint = strings.TrimSuffix(l.Endpoint, "/")
	if l.Endpoint == "" || strings.ContainsAny(l.Endpoint, "/@?#") {
		return l, fmt.Errorf("%s: %w: LIFEBOAT_S3_ENDPOINT %q is not HOST[:PORT] (%s)", l.URL(), ErrS3NotConfigured, ep, s3EnvHelp)
	}
	l.Insecure = os.Getenv("LIFEBOAT_S3_INSECURE") == "1"
	return l, nil
}

// URL is s3://BUCKET/PREFIX, without the endpoint.
func (l S3Location) URL() string {
	return strings.TrimSuffix("s3://"+l.Bucket+"/"+l.Prefix, "/")
}

// String is the location and its server, as errors about storage show it.
func (l S3Location) String() string {
	scheme := "https://"
	if l.NoTLS {
		scheme = "http://"
	}
	return l.URL() + " at " + scheme + l.Endpoint
}

// Storage opens the bucket with the keys from the environment.
func (l *S3Location) Storage(ctx context.Context, isCreate bool) (blob.Storage, error) {
	if err := checkS3Env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"); err != nil {
		return nil, fmt.Errorf("%s: %w", l, err)
	}
	id, key, token := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), os.Getenv("AWS_SESSION_TOKEN")
	if err := l.checkBucket(ctx, id, key, token); err != nil {
		return nil, err
	}
	st, err := s3.New(ctx, &s3.Options{
		BucketName: l.Bucket, Prefix: l.Prefix, Endpoint: l.Endpoint, DoNotUseTLS: l.NoTLS, DoNotVerifyTLS: l.Insecure,
		AccessKeyID: id, SecretAccessKey: key, SessionToken: token, Region: l.Region, PointInTime: l.PointInTime,
	}, isCreate)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l, err)
	}
	return s3Storage{Storage: st, loc: *l}, nil
}

// checkBucket asks the server once whether the bucket exists. kopia's
// storage would report a missing bucket as a missing repository, and a
// write into it only after ten retries; wrong keys or a dead server would
// also take a minute of retries. One plain request tells all three apart,
// at once.
func (l *S3Location) checkBucket(ctx context.Context, id, key, token string) error {
	cli, err := l.client(id, key, token)
	if err != nil {
		return fmt.Errorf("open %s: %w", l, err)
	}
	ok, err := cli.BucketExists(ctx, l.Bucket)
	switch {
	case err != nil:
		return fmt.Errorf("open %s: %w", l, err)
	case !ok:
		return fmt.Errorf("open %s: bucket %q does not exist: create it on the server first", l, l.Bucket)
	}
	return nil
}

// client is a plain S3 client of the location's server, which answers at
// once rather than after kopia's retries.
func (l *S3Location) client(id, key, token string) (*minio.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if l.Insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec // asked for with LIFEBOAT_S3_INSECURE=1
	}
	return minio.New(l.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(id, key, token), Secure: !l.NoTLS,
		Region: l.Region, Transport: tr, MaxRetries: 1})
}

// s3Storage reports lifeboat's own connection info, which kopia writes
// into its connection config: no keys.
type s3Storage struct {
	blob.Storage
	loc S3Location
}

func (s s3Storage) ConnectionInfo() blob.ConnectionInfo {
	l := s.loc
	return blob.ConnectionInfo{Type: s3Type, Config: &l}
}

// DisplayName names the storage without kopia's own rendering, which is
// not ours to vouch for.
func (s s3Storage) DisplayName() string { return s.loc.String() }

// Blobs is the repository's storage, for replication.
func (r *Repository) Blobs() (blob.Storage, error) {
	dr, ok := r.rep.(interface{ BlobStorage() blob.Storage })
	if !ok {
		return nil, errors.New("replication needs a direct repository connection")
	}
	return dr.BlobStorage(), nil
}

// Location is where the repository lives.
func (r *Repository) Location() Location { return r.loc }

// TargetStorage opens a replication target, creating a local directory
// when it does not exist yet.
func TargetStorage(ctx context.Context, to string) (blob.Storage, Location, error) {
	l, err := ParseLocation(to)
	if err != nil {
		return nil, l, err
	}
	st, err := l.storage(ctx, true)
	return st, l, err
}
