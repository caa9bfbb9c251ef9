package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, body string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "lifeboat.yaml")
	if err := os.WriteFile(p, []byte(body), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoad(t *testing.T) {
	c, err := Load(write(t, `
repository: /srv/repo
listen: 127.0.0.1:9000
concurrency: 2
defaults:
  schedule: "@every 6h"
  retention: last=3,daily=7
  priority: normal
offsite:
  to: s3://bucket/lifeboat
  schedule: "0 3 * * *"
  lock: {mode: compliance, period: 30d}
  verify_schedule: "@daily"
webhook:
  url: http://127.0.0.1:9999/hook
`, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	d := c.PolicyDefaults()
	if c.Repository != "/srv/repo" || c.Concurrency != 2 || d.Schedule != "@every 6h" || d.Retention.Last != 3 || d.Retention.Daily != 7 || !d.Enabled || d.Consistency != "auto" || d.Priority != "normal" {
		t.Fatalf("%+v %+v", c, d)
	}
	if c.Offsite.Lock.Mode != "compliance" || c.Offsite.Lock.Period != "30d" || c.Offsite.VerifySchedule != "@daily" {
		t.Errorf("offsite lock: %+v", c.Offsite)
	}
	if c.Maintenance.Schedule != "@daily" || c.Check.Schedule != "@weekly" {
		t.Errorf("upkeep defaults: %+v %+v", c.Maintenance, c.Check)
	}
	if c, err := Load(write(t, "", 0o644)); err != nil || c.Listen != DefaultListen {
		t.Errorf("empty file: %v %+v", err, c)
	}
	if c, err := Load(""); err != nil || c.Concurrency != 1 {
		t.Errorf("no file: %v", err)
	}
}

// hash is the SHA-256 of "test-token".
const hash = "4c5dc9b7708905f77f5e5d16316b5dfb425e68cb326dcd55a860e90a7707031e"

func TestLoadAPI(t *testing.T) {
	c, err := Load(write(t, `
api:
  tokens:
    - {role: viewer, sha256: `+hash+`}
    - {role: operator, sha256: `+hash+`}
  tls_cert: /etc/lifeboat/cert.pem
  tls_key: /etc/lifeboat/key.pem
  max_conns_per_client: -1
  session_ttl: 1h
restore:
  target_roots: [/srv/restore]
`, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.API.Tokens) != 2 || c.API.Tokens[1].Role != "operator" || c.API.TLSKey == "" || c.API.MaxConnsPerClient != -1 || c.Restore.TargetRoots[0] != "/srv/restore" {
		t.Fatalf("%+v %+v", c.API, c.Restore)
	}
}

func TestLoadRefuses(t *testing.T) {
	for body, want := range map[string]string{
		"listn: 1":                                                     "field listn not found",
		"listen: everywhere":                                           "HOST:PORT",
		"defaults: {consistency: freeze}":                              "unknown consistency",
		"defaults: {schedule: '@every 0s'}":                            "defaults.schedule",
		"offsite: {to: /mnt/usb}":                                      "s3://",
		"check: {read_data: 150}":                                      "percentage",
		"offsite: {to: s3://b, lock: {mode: legal, period: 30d}}":      "governance or compliance",
		"offsite: {to: s3://b, lock: {mode: compliance, period: 12h}}": "at least a day",
		"offsite: {lock: {mode: compliance, period: 30d}}":             "set offsite.to",
		"offsite: {to: s3://b, verify_schedule: 'every tuesday'}":      "offsite.verify_schedule",
		"offsite: {verify_schedule: '@daily'}":                         "set offsite.to",
		"defaults: {retention: forever}":                               "defaults.retention",
		"defaults: {priority: idle}":                                   "defaults.priority",
		"api: {tokens: [{role: root, sha256: " + hash + "}]}":          "use viewer, operator or admin",
		"api: {tokens: [{role: viewer, sha256: abc}]}":                 "64 hex digits",
		"api: {tokens: [{role: viewer, token: plain}]}":                "field token not found",
		"api: {tls_cert: /etc/cert.pem}":                               "go together",
		"api: {session_ttl: forever}":                                  "api.session_ttl",
		"restore: {target_roots: [srv/restore]}":                       "absolute directory",
		"restore: {target_roots: [/]}":                                 "write anywhere",
	} {
		if _, err := Load(write(t, body, 0o600)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
	}
	if _, err := Load(write(t, "offsite: {secret_access_key: abc}", 0o644)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a readable secret: %v", err)
	}
}
