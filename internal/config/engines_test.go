package config

import (
	"strings"
	"testing"
)

func TestEngines(t *testing.T) {
	c, err := Load(write(t, `
engines:
  - {name: web1, host: "unix:///run/a.sock", concurrency: 2}
  - {name: db.2, host: "tcp://10.0.0.2:2376", tls_verify: true, cert_path: /etc/lifeboat/db2}
  - {name: db3, host: "ssh://backup@db3", ssh_config: /etc/lifeboat/ssh_config}
`, 0o600))
	if err != nil {
		t.Fatal(err)
	}
	l := c.EngineList()
	if len(l) != 3 || l[0].Concurrency != 2 || l[1].Concurrency != 1 || l[1].Endpoint().CertPath != "/etc/lifeboat/db2" ||
		l[2].Endpoint().SSHConfig != "/etc/lifeboat/ssh_config" {
		t.Fatalf("engines: %+v", l)
	}
	if e, err := c.FindEngine("db.2"); err != nil || e.Host != "tcp://10.0.0.2:2376" {
		t.Errorf("find db.2: %+v %v", e, err)
	}
	if _, err := c.FindEngine("nope"); err == nil || !strings.Contains(err.Error(), "web1, db.2, db3") {
		t.Errorf("find nope: %v", err)
	}
	none, err := Load("")
	if err != nil {
		t.Fatal(err)
	}
	if l := none.EngineList(); len(l) != 1 || l[0].Name != DefaultEngine || l[0].Host != "" {
		t.Errorf("no engines: %+v", l)
	}
}

func TestEnginesInvalid(t *testing.T) {
	for body, want := range map[string]string{
		"engines: [{name: a, host: unix:///a}, {name: a, host: unix:///b}]": `engines[1].name "a": another engine has that name`,
		"engines: [{name: a/b, host: unix:///a}]":                           `engines[0].name "a/b": use letters`,
		"engines: [{host: unix:///a}]":                                      "engines[0]: give it a name",
		"engines: [{name: a, host: 10.0.0.1:2375}]":                         `engines[0].host "10.0.0.1:2375": write unix:///PATH`,
		"engines: [{name: a, host: unix:///a}, {name: b}]":                  "engines[1].host: set it",
		"engines: [{name: a, host: tcp://h:2376, tls_verify: true}]":        "engines[0].tls_verify: set cert_path",
		"engines: [{name: a, host: unix:///a, concurrency: -1}]":            "engines[0].concurrency -1: at least 1",
		"engines: [{name: a, host: tcp://h:2376, ssh_config: /x}]":          "engines[0].ssh_config: it is for ssh:// engines",
	} {
		_, err := Load(write(t, body, 0o600))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want %q", body, err, want)
		}
	}
}
