package engine

import (
	"strings"
	"testing"
)

func TestVolumeDataDir(t *testing.T) {
	tmp := t.TempDir()
	for _, tc := range []struct {
		name string
		v    Volume
		want string
		err  string
	}{
		{"plain", Volume{Name: "a", Driver: "local", Mountpoint: "/var/lib/docker/volumes/a/_data"}, "/var/lib/docker/volumes/a/_data", ""},
		{"bind", Volume{Name: "b", Driver: "local", Mountpoint: "/m", Options: map[string]string{"type": "none", "o": "bind", "device": "/srv/pg/"}}, "/srv/pg", ""},
		{"bind among options", Volume{Name: "b", Driver: "local", Mountpoint: "/m", Options: map[string]string{"type": "none", "o": "rw, bind", "device": "/srv/x"}}, "/srv/x", ""},
		{"plugin", Volume{Name: "p", Driver: "rexray", Mountpoint: "/m"}, "/m", ""},
		{"tmpfs not mounted", Volume{Name: "t", Driver: "local", Mountpoint: tmp, Options: map[string]string{"type": "tmpfs", "device": "tmpfs"}}, "", "only while a container uses it"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.v.DataDir()
			switch {
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("DataDir() error %v, want one with %q", err, tc.err)
			case tc.err == "" && (err != nil || got != tc.want):
				t.Fatalf("DataDir() = %q, %v, want %q", got, err, tc.want)
			}
		})
	}
}
