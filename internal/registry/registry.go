// Package registry talks to an image registry (the Docker Registry HTTP
// API v2) for what the Engine API cannot do — deleting a tag when its
// restore point is forgotten — and finds credentials the way docker does.
// Credentials travel in headers only; they are never logged or stored in
// restore points.
package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/secret"
)

// Credentials for one registry; zero means anonymous.
type Credentials struct {
	Username string
	Password secret.Value
}

// CredentialsFor finds credentials for host: LIFEBOAT_REGISTRY_USER and
// LIFEBOAT_REGISTRY_PASSWORD, else Docker's own config.json (auths).
func CredentialsFor(host string) (Credentials, error) {
	if u := os.Getenv("LIFEBOAT_REGISTRY_USER"); u != "" {
		return Credentials{Username: u, Password: secret.New(os.Getenv("LIFEBOAT_REGISTRY_PASSWORD"))}, nil
	}
	dir := os.Getenv("DOCKER_CONFIG")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".docker")
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if errors.Is(err, os.ErrNotExist) {
		return Credentials{}, nil
	}
	if err != nil {
		return Credentials{}, fmt.Errorf("read docker config: %w", err)
	}
	var cfg struct {
		Auths map[string]struct {
			Auth string `json:"auth"`
		} `json:"auths"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		return Credentials{}, fmt.Errorf("read docker config: %w", err)
	}
	a, ok := cfg.Auths[host]
	if !ok || a.Auth == "" {
		return Credentials{}, nil
	}
	raw, err := base64.StdEncoding.DecodeString(a.Auth)
	if err != nil {
		return Credentials{}, fmt.Errorf("docker config: auth for %s: %w", host, err)
	}
	user, pw, _ := strings.Cut(string(raw), ":")
	return Credentials{Username: user, Password: secret.New(pw)}, nil
}

// EngineAuth is the X-Registry-Auth value the Engine API wants.
func (c Credentials) EngineAuth(host string) string {
	if c.Username == "" {
		return base64.URLEncoding.EncodeToString([]byte("{}"))
	}
	b, _ := json.Marshal(map[string]string{"username": c.Username, "password": c.Password.Reveal(), "serveraddress": host})
	return base64.URLEncoding.EncodeToString(b)
}

// Split cuts "host:port/repo/name:tag" into host, repository and tag.
func Split(ref string) (host, repo, tag string, err error) {
	host, rest, ok := strings.Cut(ref, "/")
	if !ok || !strings.ContainsAny(host, ".:") && host != "localhost" {
		return "", "", "", fmt.Errorf("image %q names no registry host", ref)
	}
	i := strings.LastIndex(rest, ":")
	if i < 0 {
		return "", "", "", fmt.Errorf("image %q has no tag", ref)
	}
	return host, rest[:i], rest[i+1:], nil
}

// DeleteTag removes ref's manifest from its registry (the registry must
// allow deletes; freeing the blobs is the registry's garbage collection).
// A tag already gone is not an error.
func DeleteTag(ctx context.Context, ref string, cred Credentials) error {
	host, repo, tag, err := Split(ref)
	if err != nil {
		return err
	}
	base := scheme(host) + "://" + host + "/v2/" + repo + "/manifests/"
	hc := &http.Client{Timeout: 30 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, base+tag, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
	cred.authorize(req)
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("registry %s: %w", host, err)
	}
	resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil
	case resp.StatusCode != http.StatusOK:
		return fmt.Errorf("registry %s: look up %s: %s", host, ref, resp.Status)
	}
	digest := resp.Header.Get("Docker-Content-Digest")
	if digest == "" {
		return fmt.Errorf("registry %s: no digest for %s", host, ref)
	}
	req, err = http.NewRequestWithContext(ctx, http.MethodDelete, base+digest, nil)
	if err != nil {
		return err
	}
	cred.authorize(req)
	resp, err = hc.Do(req)
	if err != nil {
		return fmt.Errorf("registry %s: %w", host, err)
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusAccepted, http.StatusOK, http.StatusNotFound:
		return nil
	case http.StatusMethodNotAllowed:
		return fmt.Errorf("registry %s refuses deletes: enable storage.delete in its configuration", host)
	}
	return fmt.Errorf("registry %s: delete %s: %s", host, ref, resp.Status)
}

func (c Credentials) authorize(r *http.Request) {
	if c.Username != "" {
		r.SetBasicAuth(c.Username, c.Password.Reveal())
	}
}

// scheme is http for loopback registries, as the engine allows them
// without TLS; https otherwise.
func scheme(host string) string {
	h := host
	if i := strings.LastIndex(h, ":"); i > 0 {
		h = h[:i]
	}
	if h == "localhost" || strings.HasPrefix(h, "127.") || h == "[::1]" {
		return "http"
	}
	return "https"
}
