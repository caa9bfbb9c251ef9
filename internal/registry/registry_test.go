package registry

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct{ ref, host, repo, tag string }{
		{"127.0.0.1:5000/lifeboat/shop/db:20261124T153000Z", "127.0.0.1:5000", "lifeboat/shop/db", "20261124T153000Z"},
		{"reg.example:443/a:b", "reg.example:443", "a", "b"},
		{"localhost/x/y:z", "localhost", "x/y", "z"},
	} {
		h, r, tg, err := Split(tc.ref)
		if err != nil || h != tc.host || r != tc.repo || tg != tc.tag {
			t.Errorf("Split(%q) = %q %q %q %v", tc.ref, h, r, tg, err)
		}
	}
	for _, bad := range []string{"busybox:1", "lifeboat/x:1", "127.0.0.1:5000/x"} {
		if _, _, _, err := Split(bad); err == nil {
			t.Errorf("Split(%q) accepted", bad)
		}
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("LIFEBOAT_REGISTRY_USER", "")
	auth := base64.StdEncoding.EncodeToString([]byte("alice:s3cret-pw"))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"auths":{"reg:5000":{"auth":"`+auth+`"}}}`), 0o600)
	c, err := CredentialsFor("reg:5000")
	if err != nil || c.Username != "alice" || c.Password.Reveal() != "s3cret-pw" {
		t.Fatalf("%+v %v", c, err)
	}
	if s := strings.Join([]string{c.Password.String(), c.Password.GoString()}, " "); strings.Contains(s, "s3cret") {
		t.Fatal("password printable")
	}
	if c, _ := CredentialsFor("other:5000"); c.Username != "" {
		t.Fatal("credentials for an unknown host")
	}
	t.Setenv("LIFEBOAT_REGISTRY_USER", "bob")
	t.Setenv("LIFEBOAT_REGISTRY_PASSWORD", "pw2")
	if c, _ := CredentialsFor("reg:5000"); c.Username != "bob" || c.Password.Reveal() != "pw2" {
		t.Fatal("env does not win")
	}
	if got := (Credentials{}).EngineAuth("x"); got != base64.URLEncoding.EncodeToString([]byte("{}")) {
		t.Fatalf("anonymous auth %q", got)
	}
}

// TestCredentialHelper resolves credentials through a credHelpers entry,
// as Docker does: a docker-credential-NAME program on PATH answers "get".
func TestCredentialHelper(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv("LIFEBOAT_REGISTRY_USER", "")
	helper := "#!/bin/sh\nread host\n[ \"$1\" = get ] && [ \"$host\" = reg.example:5000 ] || exit 1\n" +
		`printf '{"ServerURL":"%s","Username":"carol","Secret":"helper-pw"}' "$host"` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "docker-credential-lbtest"), []byte(helper), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credHelpers":{"reg.example:5000":"lbtest"}}`), 0o600)
	c, err := CredentialsFor("reg.example:5000")
	if err != nil || c.Username != "carol" || c.Password.Reveal() != "helper-pw" {
		t.Fatalf("credHelpers: %+v %v", c, err)
	}
	os.WriteFile(filepath.Join(dir, "config.json"), []byte(`{"credsStore":"lbtest"}`), 0o600)
	if c, err := CredentialsFor("reg.example:5000"); err != nil || c.Username != "carol" {
		t.Fatalf("credsStore: %+v %v", c, err)
	}
}
