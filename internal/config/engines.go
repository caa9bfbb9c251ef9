package config

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// Engine is one Docker Engine that lifeboat serve protects: how to reach
// it and how many of its jobs may run at once.
type Engine struct {
	Name      string `yaml:"name"`
	Host      string `yaml:"host"` // unix://, tcp://, ssh://user@host; "" is DOCKER_HOST
	TLSVerify bool   `yaml:"tls_verify"`
	CertPath  string `yaml:"cert_path"` // ca.pem, cert.pem, key.pem
	// SSHConfig is an ssh_config file for an ssh:// engine (ssh -F): a
	// daemon's own keys and known hosts, as LIFEBOAT_SSH_CONFIG is for
	// DOCKER_HOST.
	SSHConfig string `yaml:"ssh_config"`
	// Concurrency is how many of this engine's jobs run at once; 1.
	Concurrency int `yaml:"concurrency"`
}

// Endpoint is how package engine connects to e.
func (e Engine) Endpoint() engine.Endpoint {
	return engine.Endpoint{Name: e.Name, Host: e.Host, TLSVerify: e.TLSVerify, CertPath: e.CertPath, SSHConfig: e.SSHConfig}
}

// engineName is what a unit's name may start with (ENGINE/KIND/NAME): no
// slash, no @ (points are UNIT@TIME), nothing a shell or URL mangles.
var engineName = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$`)

// engineSchemes are the DOCKER_HOST schemes the Docker client speaks.
var engineSchemes = []string{"unix://", "tcp://", "ssh://", "npipe://", "http://", "https://"}

// EngineList is the engines of the file; without an engines: list, the
// one engine of the environment (DOCKER_HOST) under the name "local".
func (c *Config) EngineList() []Engine {
	if len(c.Engines) == 0 {
		return []Engine{{Name: DefaultEngine, Concurrency: c.Concurrency}}
	}
	return c.Engines
}

// DefaultEngine names the engine of DOCKER_HOST when the file lists none.
const DefaultEngine = "local"

// FindEngine is the engine of the file called name.
func (c *Config) FindEngine(name string) (Engine, error) {
	var names []string
	for _, e := range c.EngineList() {
		if e.Name == name {
			return e, nil
		}
		names = append(names, e.Name)
	}
	return Engine{}, fmt.Errorf("no engine %q in the config file: use one of %s", name, strings.Join(names, ", "))
}

func (c *Config) setEngineDefaults() {
	for i := range c.Engines {
		if c.Engines[i].Concurrency == 0 {
			c.Engines[i].Concurrency = 1
		}
	}
}

func (c *Config) validateEngines() []error {
	var errs []error
	seen := map[string]bool{}
	for i, e := range c.Engines {
		at := fmt.Sprintf("engines[%d]", i)
		switch {
		case e.Name == "":
			errs = append(errs, fmt.Errorf("%s: give it a name (letters, digits, . _ -), as units are named NAME/KIND/UNIT", at))
		case !engineName.MatchString(e.Name):
			errs = append(errs, fmt.Errorf("%s.name %q: use letters, digits, . _ - (at most 63, starting with a letter or digit)", at, e.Name))
		case seen[e.Name]:
			errs = append(errs, fmt.Errorf("%s.name %q: another engine has that name: give each its own", at, e.Name))
		}
		seen[e.Name] = true
		if e.Host != "" && !hasScheme(e.Host) {
			errs = append(errs, fmt.Errorf("%s.host %q: write unix:///PATH, tcp://HOST:PORT or ssh://USER@HOST", at, e.Host))
		}
		if e.Host == "" && len(c.Engines) > 1 {
			errs = append(errs, fmt.Errorf("%s.host: set it: only a lone engine may stand for DOCKER_HOST", at))
		}
		if e.Concurrency < 0 {
			errs = append(errs, fmt.Errorf("%s.concurrency %d: at least 1", at, e.Concurrency))
		}
		if e.TLSVerify && e.CertPath == "" {
			errs = append(errs, fmt.Errorf("%s.tls_verify: set cert_path, the directory of ca.pem, cert.pem and key.pem", at))
		}
		if e.CertPath != "" && !strings.HasPrefix(e.Host, "tcp://") && !strings.HasPrefix(e.Host, "https://") {
			errs = append(errs, fmt.Errorf("%s.cert_path: TLS is for tcp:// engines; remove it or use tcp://HOST:2376", at))
		}
		if e.SSHConfig != "" && !strings.HasPrefix(e.Host, "ssh://") {
			errs = append(errs, fmt.Errorf("%s.ssh_config: it is for ssh:// engines; remove it or use ssh://USER@HOST", at))
		}
	}
	if len(errs) > 0 {
		return []error{errors.Join(errs...)}
	}
	return nil
}

func hasScheme(host string) bool {
	for _, s := range engineSchemes {
		if strings.HasPrefix(host, s) && len(host) > len(s) {
			return true
		}
	}
	return false
}
