// Package registry talks to an image registry for what the Engine API
// cannot do — deleting a tag when its restore point is forgotten — and
// finds credentials the way docker does. Both go through
// go-containerregistry: its keychain reads Docker's config.json with
// credsStore and credHelpers, and its transport speaks the registries'
// token auth as well as Basic. Credentials travel in headers only; they are
// never logged or stored in restore points.
package registry

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/lifeboat-backup/lifeboat/internal/secret"
)

// Credentials for one registry; zero means anonymous.
type Credentials struct {
	Username string
	Password secret.Value
	// IdentityToken is an OAuth refresh token some credential helpers
	// return instead of a password.
	IdentityToken secret.Value
}

func (c Credentials) anonymous() bool {
	return c.Username == "" && c.IdentityToken.Reveal() == ""
}

// CredentialsFor finds credentials for host: LIFEBOAT_REGISTRY_USER and
// LIFEBOAT_REGISTRY_PASSWORD, else Docker's client configuration
// ($DOCKER_CONFIG/config.json: auths, credsStore, credHelpers).
func CredentialsFor(host string) (Credentials, error) {
	if u := os.Getenv("LIFEBOAT_REGISTRY_USER"); u != "" {
		return Credentials{Username: u, Password: secret.New(os.Getenv("LIFEBOAT_REGISTRY_PASSWORD"))}, nil
	}
	reg, err := name.NewRegistry(host)
	if err != nil {
		return Credentials{}, fmt.Errorf("registry %q: %w", host, err)
	}
	a, err := authn.DefaultKeychain.Resolve(reg)
	if err != nil {
		return Credentials{}, fmt.Errorf("docker credentials for %s: %w", host, err)
	}
	cfg, err := a.Authorization()
	if err != nil {
		return Credentials{}, fmt.Errorf("docker credentials for %s: %w", host, err)
	}
	c := Credentials{Username: cfg.Username, Password: secret.New(cfg.Password), IdentityToken: secret.New(cfg.IdentityToken)}
	if c.Username == "" && cfg.Auth != "" {
		// An "auth" entry the keychain left encoded.
		raw, err := base64.StdEncoding.DecodeString(cfg.Auth)
		if err != nil {
			return Credentials{}, fmt.Errorf("docker config: auth for %s: %w", host, err)
		}
		user, pw, _ := strings.Cut(string(raw), ":")
		c.Username, c.Password = user, secret.New(pw)
	}
	return c, nil
}

// EngineAuth is the X-Registry-Auth value the Engine API wants.
func (c Credentials) EngineAuth(host string) string {
	if c.anonymous() {
		return base64.URLEncoding.EncodeToString([]byte("{}"))
	}
	m := map[string]string{"username": c.Username, "password": c.Password.Reveal(), "serveraddress": host}
	if t := c.IdentityToken.Reveal(); t != "" {
		m["identitytoken"] = t
	}
	b, _ := json.Marshal(m)
	return base64.URLEncoding.EncodeToString(b)
}

func (c Credentials) authenticator() authn.Authenticator {
	if c.anonymous() {
		return authn.Anonymous
	}
	return authn.FromConfig(authn.AuthConfig{Username: c.Username, Password: c.Password.Reveal(), IdentityToken: c.IdentityToken.Reveal()})
}

// Split cuts "host:port/repo/name:tag" into host, repository and tag. The
// host must be explicit: lifeboat never sends an image of its own to a
// registry it guessed.
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
	host, _, _, err := Split(ref)
	if err != nil {
		return err
	}
	var opts []name.Option
	if loopback(host) {
		// The engine allows loopback registries without TLS; so do we.
		opts = append(opts, name.Insecure)
	}
	tag, err := name.NewTag(ref, opts...)
	if err != nil {
		return fmt.Errorf("image %q: %w", ref, err)
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuth(cred.authenticator())}
	desc, err := remote.Head(tag, ropts...)
	if err != nil {
		if status(err) == http.StatusNotFound {
			return nil
		}
		return fmt.Errorf("registry %s: look up %s: %w", host, ref, err)
	}
	err = remote.Delete(tag.Context().Digest(desc.Digest.String()), ropts...)
	switch status(err) {
	case 0:
		if err != nil {
			return fmt.Errorf("registry %s: delete %s: %w", host, ref, err)
		}
		return nil
	case http.StatusNotFound:
		return nil
	case http.StatusMethodNotAllowed:
		return fmt.Errorf("registry %s refuses deletes: enable storage.delete in its configuration", host)
	}
	return fmt.Errorf("registry %s: delete %s: %w", host, ref, err)
}

// status is the HTTP status of a registry's error answer, 0 for other
// errors (and nil).
func status(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

func loopback(host string) bool {
	h := host
	if i := strings.LastIndex(h, ":"); i > 0 {
		h = h[:i]
	}
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "[::1]"
}
