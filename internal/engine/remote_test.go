package engine

import (
	"strings"
	"testing"
)

func TestSSHOpts(t *testing.T) {
	for _, tc := range []struct {
		host, err string
		opts      bool
	}{
		{"unix:///var/run/docker.sock", "", false},
		{"tcp://h:2376", "", false},
		{"ssh://user@h", "", true},
		{"ssh://user@h:2222/run/docker.sock", "", true},
		{"ssh://user:hunter2@h", "holds a password", false},
	} {
		t.Run(tc.host, func(t *testing.T) {
			opts, err := sshOpts(tc.host, "/etc/lifeboat/ssh_config")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("sshOpts(%q) = %v; want an error about %q that hides the password", tc.host, err, tc.err)
				}
				return
			}
			if err != nil || (opts != nil) != tc.opts {
				t.Fatalf("sshOpts(%q) = %d options, %v", tc.host, len(opts), err)
			}
		})
	}
}
