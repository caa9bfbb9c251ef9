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
offsite:
  to: s3://bucket/lifeboat
  schedule: "0 3 * * *"
webhook:
  url: http://127.0.0.1:9999/hook
`, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	d := c.PolicyDefaults()
	if c.Repository != "/srv/repo" || c.Concurrency != 2 || d.Schedule != "@every 6h" || d.Retention.Last != 3 || d.Retention.Daily != 7 || !d.Enabled || d.Consistency != "auto" {
		t.Fatalf("%+v %+v", c, d)
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

func TestLoadRefuses(t *testing.T) {
	for body, want := range map[string]string{
		"listn: 1":                          "field listn not found",
		"listen: everywhere":                "HOST:PORT",
		"defaults: {consistency: freeze}":   "unknown consistency",
		"defaults: {schedule: '@every 0s'}": "defaults.schedule",
		"offsite: {to: /mnt/usb}":           "s3://",
		"check: {read_data: 150}":           "percentage",
		"defaults: {retention: forever}":    "defaults.retention",
	} {
		if _, err := Load(write(t, body, 0o600)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", body, err, want)
		}
	}
	if _, err := Load(write(t, "offsite: {secret_access_key: abc}", 0o644)); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a readable secret: %v", err)
	}
}
