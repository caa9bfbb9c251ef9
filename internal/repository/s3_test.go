package repository

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kopia/kopia/repo/blob"

	"github.com/lifeboat-backup/lifeboat/internal/secret"
	"github.com/lifeboat-backup/lifeboat/internal/testutil"
)

func TestParseLocation(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "id")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "key")
	t.Setenv("AWS_REGION", "")
	t.Setenv("LIFEBOAT_S3_INSECURE", "")
	wd, _ := os.Getwd()
	for _, tc := range []struct {
		name, in, endpoint string
		want               Location
		str, key           string
	}{
		{name: "absolute path", in: "/srv/repo/", want: Location{Kind: KindFile, Path: "/srv/repo"}, str: "/srv/repo", key: "/srv/repo"},
		{name: "relative path", in: "repo", want: Location{Kind: KindFile, Path: filepath.Join(wd, "repo")}, str: filepath.Join(wd, "repo"), key: filepath.Join(wd, "repo")},
		{name: "file URL", in: "file:///srv/repo", want: Location{Kind: KindFile, Path: "/srv/repo"}, str: "/srv/repo", key: "/srv/repo"},
		{name: "s3 plain HTTP", in: "s3://bk/host1/", endpoint: "http://127.0.0.1:9000",
			want: Location{Kind: KindS3, S3: S3Location{Bucket: "bk", Prefix: "host1/", Endpoint: "127.0.0.1:9000", NoTLS: true}},
			str:  "s3://bk/host1", key: "s3://bk/host1 at http://127.0.0.1:9000"},
		{name: "s3 bare host is TLS", in: "s3://bk", endpoint: "minio.example:9000",
			want: Location{Kind: KindS3, S3: S3Location{Bucket: "bk", Endpoint: "minio.example:9000"}},
			str:  "s3://bk", key: "s3://bk at https://minio.example:9000"},
		{name: "s3 https", in: "s3://bk/a/b", endpoint: "https://s3.amazonaws.com/",
			want: Location{Kind: KindS3, S3: S3Location{Bucket: "bk", Prefix: "a/b/", Endpoint: "s3.amazonaws.com"}},
			str:  "s3://bk/a/b", key: "s3://bk/a/b at https://s3.amazonaws.com"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LIFEBOAT_S3_ENDPOINT", tc.endpoint)
			got, err := ParseLocation(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want || got.String() != tc.str || got.stateKey() != tc.key {
				t.Fatalf("ParseLocation(%q) = %+v %q %q, want %+v %q %q", tc.in, got, got.String(), got.stateKey(), tc.want, tc.str, tc.key)
			}
		})
	}
}

func TestParseLocationErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		env      map[string]string
		want     []string // in the message
	}{
		{name: "other scheme", in: "gs://bucket/x", want: []string{"s3://BUCKET/PREFIX"}},
		{name: "keys in the URL", in: "s3://AKID:s3cr3t@bucket/x", want: []string{"AWS_SECRET_ACCESS_KEY"}},
		{name: "no endpoint", in: "s3://bucket/x", env: map[string]string{"LIFEBOAT_S3_ENDPOINT": ""}, want: []string{"LIFEBOAT_S3_ENDPOINT", "s3://bucket/x"}},
		{name: "no keys", in: "s3://bucket/x", env: map[string]string{"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""},
			want: []string{"AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"}},
		{name: "endpoint with a path", in: "s3://bucket/x", env: map[string]string{"LIFEBOAT_S3_ENDPOINT": "http://host/path"}, want: []string{"HOST[:PORT]"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LIFEBOAT_S3_ENDPOINT", "127.0.0.1:9000")
			t.Setenv("AWS_ACCESS_KEY_ID", "id")
			t.Setenv("AWS_SECRET_ACCESS_KEY", "key")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			_, err := ParseLocation(tc.in)
			if err == nil {
				t.Fatalf("ParseLocation(%q) succeeded", tc.in)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q shows the secret", err)
			}
		})
	}
}

// TestS3Repository runs a repository on a real S3 server: init, a restore
// point, reopening from a fresh machine, and the errors a user meets. No
// key and no password is written to the connection state.
func TestS3Repository(t *testing.T) {
	m := testutil.StartMinIO(t)
	m.Bucket("lbrepo")
	m.Setenv(t)
	const password = "s3 repository password 1234"
	dir := t.TempDir()
	opts := Options{Location: "s3://lbrepo/host1", StateDir: filepath.Join(dir, "state"), Hostname: "testhost",
		Password: PasswordSource{Value: secret.New(password)}}
	if _, err := Open(t.Context(), opts); !errors.Is(err, ErrNotFound) {
		t.Fatalf("open before init: %v, want ErrNotFound", err)
	}
	res, err := Init(t.Context(), opts)
	if err != nil || res.Path != "s3://lbrepo/host1" || res.PasswordGenerated {
		t.Fatalf("init: %+v %v", res, err)
	}
	if _, err := Init(t.Context(), opts); !errors.Is(err, ErrExists) {
		t.Fatalf("second init: %v, want ErrExists", err)
	}
	r, err := Open(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	data := t.TempDir()
	if err := os.WriteFile(filepath.Join(data, "f"), []byte("on s3"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := snapshotDir(t, r, "volume/v", data)
	r.Close(context.WithoutCancel(t.Context()))

	fresh := opts
	fresh.StateDir = filepath.Join(dir, "fresh")
	r, err = Open(t.Context(), fresh)
	if err != nil {
		t.Fatalf("open from a fresh machine: %v", err)
	}
	points, err := r.List(t.Context(), "volume/v")
	r.Close(context.WithoutCancel(t.Context()))
	if err != nil || len(points) != 1 || points[0].ID != p.ID {
		t.Fatalf("points on S3: %+v %v", points, err)
	}

	config, err := os.ReadFile(filepath.Join(stateDir(opts.StateDir, "s3://lbrepo/host1 at "+m.Endpoint), "repository.config"))
	if err != nil || !bytes.Contains(config, []byte(`"lifeboat-s3"`)) {
		t.Fatalf("connection config keyed by location and endpoint, of type lifeboat-s3: %v\n%s", err, config)
	}
	for _, s := range []string{m.SecretKey, m.AccessKey, password} {
		mustNotContain(t, dir, s)
	}

	t.Run("certificate checking follows the environment", func(t *testing.T) {
		t.Setenv("LIFEBOAT_S3_INSECURE", "")
		l, err := ParseS3("s3://lbrepo/host1")
		if err != nil {
			t.Fatal(err)
		}
		l.Insecure = true // as a config written with LIFEBOAT_S3_INSECURE=1
		st, err := blob.NewStorage(t.Context(), blob.ConnectionInfo{Type: s3Type, Config: &l}, false)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close(context.WithoutCancel(t.Context()))
		if got := st.ConnectionInfo().Config.(*S3Location); got.Insecure {
			t.Error("a stored LIFEBOAT_S3_INSECURE=1 outlived the variable")
		}
	})

	t.Run("errors", func(t *testing.T) {
		bad := opts
		bad.Password = PasswordSource{Value: secret.New("wrong")}
		if _, err := Open(t.Context(), bad); !errors.Is(err, ErrWrongPassword) {
			t.Errorf("wrong password: %v", err)
		}
		bad.Password = PasswordSource{Prompt: func(bool) (secret.Value, error) { return secret.Value{}, ErrNoPassword }}
		_, err := Open(t.Context(), bad)
		if !errors.Is(err, ErrNoPassword) || !strings.Contains(err.Error(), "LIFEBOAT_PASSWORD_FILE") || !strings.Contains(err.Error(), "s3://lbrepo/host1") {
			t.Errorf("no password: %v", err)
		}
		t.Setenv("AWS_SECRET_ACCESS_KEY", "")
		if _, err := Open(t.Context(), opts); !errors.Is(err, ErrS3NotConfigured) || !strings.Contains(err.Error(), "AWS_SECRET_ACCESS_KEY") {
			t.Errorf("no secret key: %v", err)
		}
		t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey)
		other := opts
		other.Location = "s3://lbrepo/nothing-here"
		if _, err := Open(t.Context(), other); !errors.Is(err, ErrNotFound) {
			t.Errorf("open an empty prefix: %v, want ErrNotFound", err)
		}
		other.Location = "s3://no-such-bucket/x"
		for what, f := range map[string]func() error{
			"open": func() error { _, err := Open(t.Context(), other); return err },
			"init": func() error { _, err := Init(t.Context(), other); return err },
		} {
			if err := f(); err == nil || !strings.Contains(err.Error(), m.Endpoint) || !strings.Contains(err.Error(), "does not exist") {
				t.Errorf("%s in a missing bucket: %v, want an error naming the endpoint and the bucket", what, err)
			}
		}
		other.Location = "s3://lbrepo/host1"
		t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-key")
		if _, err := Open(t.Context(), other); err == nil || strings.Contains(err.Error(), "not-the-key") {
			t.Errorf("open with a wrong key: %v", err)
		}
	})
}

// mustNotContain fails when any file under dir holds s.
func mustNotContain(t *testing.T, dir, s string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(s)) {
			t.Errorf("%s holds a secret (%.4s…)", p, s)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
}
