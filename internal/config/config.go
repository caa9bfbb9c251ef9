// Package config reads the daemon's configuration file: the repository,
// the defaults that labels override, the offsite copy, the API and the
// schedules of repository upkeep.
package config

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lifeboat-backup/lifeboat/internal/notify"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/priority"
	"github.com/lifeboat-backup/lifeboat/internal/replicate"
)

// Config is the file, YAML. Every field is optional.
type Config struct {
	Repository   string `yaml:"repository"`    // as -r
	PasswordFile string `yaml:"password_file"` // as --password-file
	StateDir     string `yaml:"state_dir"`     // journal, job history
	Listen       string `yaml:"listen"`        // API address; 127.0.0.1:8420
	TokenFile    string `yaml:"token_file"`    // bearer token of the API
	Concurrency  int    `yaml:"concurrency"`   // jobs at once; 1

	// Engines are the Docker Engines serve protects; none: DOCKER_HOST's.
	Engines []Engine `yaml:"engines"`

	// Defaults apply to every unit; labels override them.
	Defaults struct {
		Enable      *bool  `yaml:"enable"`      // protect units without lifeboat.enable; true
		Schedule    string `yaml:"schedule"`    // "" : only units with lifeboat.schedule
		Consistency string `yaml:"consistency"` // auto
		Retention   string `yaml:"retention"`   // "" keeps everything
		Images      string `yaml:"images"`      // ref
		Priority    string `yaml:"priority"`    // low, normal: as backup --priority
	} `yaml:"defaults"`

	Offsite struct {
		To       string `yaml:"to"`       // s3://bucket/prefix
		Schedule string `yaml:"schedule"` // when to replicate
		Endpoint string `yaml:"endpoint"` // LIFEBOAT_S3_ENDPOINT
		// Keys here need the file to be readable by root only; the
		// environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) wins.
		AccessKeyID     string `yaml:"access_key_id"`
		SecretAccessKey string `yaml:"secret_access_key"`
		// Lock puts S3 object lock on the copy's blobs (replicate's
		// --lock-mode and --lock-period).
		Lock struct {
			Mode   string `yaml:"mode"`   // governance or compliance
			Period string `yaml:"period"` // 30d
		} `yaml:"lock"`
		// VerifySchedule is when offsite-verify proves the lock holds.
		VerifySchedule string `yaml:"verify_schedule"`
	} `yaml:"offsite"`

	Maintenance struct {
		Schedule string `yaml:"schedule"` // repository maintenance; @daily
	} `yaml:"maintenance"`

	Check struct {
		Schedule string  `yaml:"schedule"`  // lifeboat check; @weekly
		ReadData float64 `yaml:"read_data"` // percent of content read back
	} `yaml:"check"`

	// Drills restore units' points into a sandbox and prove they work.
	Drills struct {
		// Schedule drills the newest point of every protected unit
		// without a lifeboat.drill label; "" or never: only labelled ones.
		Schedule string `yaml:"schedule"`
		// Concurrency is how many drills run at once; 1. A drill starts
		// a unit's copy beside it: the budget keeps the host's load sane.
		Concurrency int `yaml:"concurrency"`
	} `yaml:"drills"`

	Webhook struct {
		URL string `yaml:"url"` // POSTed a JSON event when a job fails
		// Secret signs each body: header X-Lifeboat-Signature, sha256=HEX.
		Secret string   `yaml:"secret"`
		Events []string `yaml:"events"` // failure, success, drill, anomaly; failure and anomaly
	} `yaml:"webhook"`

	Notify Notify `yaml:"notify"`

	Pings struct {
		// URL is the dead-man ping URL of units without lifeboat.ping.
		URL string `yaml:"url"`
	} `yaml:"pings"`

	API API `yaml:"api"`

	Restore struct {
		// TargetRoots are the host directories under which the API may
		// restore into a directory (restore.target). None: the API
		// restores into Docker only; the CLI is not limited.
		TargetRoots []string `yaml:"target_roots"`
	} `yaml:"restore"`
}

// API is how lifeboat serve's HTTP server admits clients.
type API struct {
	// Tokens are the API's credentials beyond the token file (which is
	// admin): each its role and the SHA-256 of the token, hex.
	Tokens []Token `yaml:"tokens"`
	// TLSCert and TLSKey, PEM files: serve HTTPS instead of HTTP.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// MaxConns caps open connections (default 1024), MaxConnsPerClient
	// those of one client address (default 64; 0 keeps the default,
	// -1 lifts it, for a reverse proxy that limits on its own).
	MaxConns          int `yaml:"max_conns"`
	MaxConnsPerClient int `yaml:"max_conns_per_client"`
	// SessionTTL is how long a web UI sign-in lasts; 12h.
	SessionTTL string `yaml:"session_ttl"`
}

// Notify are the shoutrrr targets of events, and where a unit without
// a lifeboat.notify label sends them.
type Notify struct {
	Targets []NotifyTarget `yaml:"targets"`
	// Default names the targets of units without a label; every target
	// when absent.
	Default []string `yaml:"default"`
}

// NotifyTarget is one named shoutrrr URL and the events it gets.
type NotifyTarget struct {
	Name   string   `yaml:"name"`
	URL    string   `yaml:"url"`
	Events []string `yaml:"events"` // failure, success, drill, anomaly; failure and anomaly
}

// NotifyTargets are the targets as package notify takes them.
func (c *Config) NotifyTargets() []notify.Target {
	var out []notify.Target
	for _, t := range c.Notify.Targets {
		out = append(out, notify.Target{Name: t.Name, URL: t.URL, Events: t.Events})
	}
	return out
}

// Token is one hashed API token.
type Token struct {
	Role   string `yaml:"role"`   // viewer, operator or admin
	SHA256 string `yaml:"sha256"` // printf %s TOKEN | sha256sum
}

// Roles, weakest first.
var Roles = []string{"viewer", "operator", "admin"}

// DefaultListen keeps the API on the loopback interface unless told.
const DefaultListen = "127.0.0.1:8420"

// Load reads a config file; "" gives the defaults.
func Load(path string) (*Config, error) {
	c := &Config{}
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		// An empty file is all defaults.
		if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config %s: %w", path, err)
		}
		if what := c.secretsHeld(); what != "" {
			if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
				return nil, fmt.Errorf("config %s holds %s but others may read it (mode %v): chmod 600 it", path, what, st.Mode().Perm())
			}
		}
	}
	c.setDefaults()
	return c, c.validate()
}

// secretsHeld names the secrets the file holds, if any: notification
// URLs carry tokens and passwords.
func (c *Config) secretsHeld() string {
	switch {
	case c.Offsite.SecretAccessKey != "":
		return "an S3 secret"
	case c.Webhook.Secret != "":
		return "the webhook's secret"
	case len(c.Notify.Targets) > 0:
		return "notification URLs"
	case c.Pings.URL != "":
		return "a ping URL"
	}
	return ""
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Defaults.Consistency == "" {
		c.Defaults.Consistency = "auto"
	}
	if c.Defaults.Images == "" {
		c.Defaults.Images = "ref"
	}
	if c.Maintenance.Schedule == "" {
		c.Maintenance.Schedule = "@daily"
	}
	if c.Check.Schedule == "" {
		c.Check.Schedule = "@weekly"
	}
	if c.Drills.Concurrency == 0 {
		c.Drills.Concurrency = 1
	}
	c.setEngineDefaults()
}

func (c *Config) validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen %q: write HOST:PORT, as %s", c.Listen, DefaultListen))
	}
	if err := policy.CheckMode(c.Defaults.Consistency); err != nil {
		errs = append(errs, fmt.Errorf("defaults.consistency: %w", err))
	}
	if err := policy.CheckImages(c.Defaults.Images); err != nil {
		errs = append(errs, fmt.Errorf("defaults.images: %w", err))
	}
	if err := priority.Check(c.Defaults.Priority); err != nil {
		errs = append(errs, fmt.Errorf("defaults.priority: %w", err))
	}
	if c.Defaults.Retention != "" {
		if _, err := policy.ParseRetention(c.Defaults.Retention); err != nil {
			errs = append(errs, fmt.Errorf("defaults.retention: %w", err))
		}
	}
	for name, s := range map[string]string{"defaults.schedule": c.Defaults.Schedule, "offsite.schedule": c.Offsite.Schedule, "offsite.verify_schedule": c.Offsite.VerifySchedule, "maintenance.schedule": c.Maintenance.Schedule, "check.schedule": c.Check.Schedule, "drills.schedule": c.Drills.Schedule} {
		if s != "" && s != "never" {
			if err := policy.CheckSchedule(s); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", name, err))
			}
		}
	}
	if c.Offsite.To != "" && !strings.HasPrefix(c.Offsite.To, "s3://") {
		errs = append(errs, fmt.Errorf("offsite.to %q: write s3://BUCKET/PREFIX", c.Offsite.To))
	}
	if l := c.Offsite.Lock; l.Mode != "" || l.Period != "" {
		if c.Offsite.To == "" {
			errs = append(errs, errors.New("offsite.lock: set offsite.to, the S3 copy to lock"))
		} else if _, err := replicate.ParseLock(l.Mode, l.Period); err != nil {
			errs = append(errs, fmt.Errorf("offsite.lock: %w", err))
		}
	}
	if c.Offsite.VerifySchedule != "" && c.Offsite.VerifySchedule != "never" && c.Offsite.To == "" {
		errs = append(errs, errors.New("offsite.verify_schedule: set offsite.to, the S3 copy to verify"))
	}
	if c.Drills.Concurrency < 0 {
		errs = append(errs, fmt.Errorf("drills.concurrency %d: at least 1", c.Drills.Concurrency))
	}
	if c.Check.ReadData < 0 || c.Check.ReadData > 100 {
		errs = append(errs, fmt.Errorf("check.read_data %v: a percentage from 0 to 100", c.Check.ReadData))
	}
	errs = append(errs, c.API.validate()...)
	errs = append(errs, c.validateEngines()...)
	errs = append(errs, c.validateNotify()...)
	for i, r := range c.Restore.TargetRoots {
		if !filepath.IsAbs(r) {
			errs = append(errs, fmt.Errorf("restore.target_roots[%d] %q: write an absolute directory", i, r))
		} else if filepath.Clean(r) == "/" {
			errs = append(errs, fmt.Errorf("restore.target_roots[%d]: / would let the API write anywhere: name a directory for restores", i))
		}
	}
	return errors.Join(errs...)
}

func (c *Config) validateNotify() []error {
	var errs []error
	if len(c.Notify.Targets) > 0 || c.Notify.Default != nil {
		if _, err := notify.NewRouter(c.NotifyTargets(), c.Notify.Default); err != nil {
			errs = append(errs, err)
		}
	}
	if err := notify.CheckClasses(c.Webhook.Events); err != nil {
		errs = append(errs, fmt.Errorf("webhook.events: %w", err))
	}
	if c.Webhook.Secret != "" && c.Webhook.URL == "" {
		errs = append(errs, errors.New("webhook.secret without webhook.url: add the URL it signs for"))
	}
	if c.Pings.URL != "" {
		if err := policy.CheckPing(c.Pings.URL); err != nil {
			errs = append(errs, fmt.Errorf("pings.url: %w", err))
		}
	}
	return errs
}

func (a *API) validate() []error {
	var errs []error
	for i, t := range a.Tokens {
		if !slices.Contains(Roles, t.Role) {
			errs = append(errs, fmt.Errorf("api.tokens[%d].role %q: use viewer, operator or admin", i, t.Role))
		}
		if b, err := hex.DecodeString(t.SHA256); err != nil || len(b) != sha256.Size {
			errs = append(errs, fmt.Errorf("api.tokens[%d].sha256: 64 hex digits, as printf %%s TOKEN | sha256sum prints", i))
		}
	}
	if (a.TLSCert == "") != (a.TLSKey == "") {
		errs = append(errs, errors.New("api.tls_cert and api.tls_key go together"))
	}
	if a.SessionTTL != "" {
		if d, err := time.ParseDuration(a.SessionTTL); err != nil || d <= 0 {
			errs = append(errs, fmt.Errorf("api.session_ttl %q: a duration such as 12h", a.SessionTTL))
		}
	}
	if a.MaxConns < 0 {
		errs = append(errs, fmt.Errorf("api.max_conns %d: a positive number", a.MaxConns))
	}
	return errs
}

// PolicyDefaults are the defaults labels override.
func (c *Config) PolicyDefaults() policy.Defaults {
	d := policy.DefaultDefaults
	if c.Defaults.Enable != nil {
		d.Enabled = *c.Defaults.Enable
	}
	d.Consistency, d.Images, d.Priority = c.Defaults.Consistency, c.Defaults.Images, c.Defaults.Priority
	if c.Defaults.Retention != "" {
		d.Retention, _ = policy.ParseRetention(c.Defaults.Retention)
	}
	d.Schedule = c.Defaults.Schedule
	d.Ping = c.Pings.URL
	if c.Drills.Schedule != "never" {
		d.Drill = c.Drills.Schedule
	}
	return d
}
