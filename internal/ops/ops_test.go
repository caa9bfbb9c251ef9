package ops

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/policy"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// untouchable is an Env whose repository and engine fail the test when
// used: an invalid request must be refused before either is touched.
func untouchable(t *testing.T) *Env {
	t.Helper()
	return &Env{StateDir: t.TempDir(),
		Repository: func(context.Context, bool) (*repository.Repository, error) {
			t.Error("the repository was opened for an invalid request")
			return nil, errors.New("no repository")
		},
		Engine: func(context.Context) (*engine.Client, error) {
			t.Error("the engine was connected for an invalid request")
			return nil, errors.New("no engine")
		},
	}
}

func wantInvalid(t *testing.T, err error, fragment string) {
	t.Helper()
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), fragment) {
		t.Fatalf("%v, want an invalid-request error with %q", err, fragment)
	}
}

func TestBackupRequestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  BackupRequest
		want string // "" : valid
	}{
		{"one unit", BackupRequest{Units: []string{"project/shop"}}, ""},
		{"bare name", BackupRequest{Units: []string{"pgdata"}, Consistency: "snapshot,pause"}, ""},
		{"all", BackupRequest{All: true, Images: "commit,save"}, ""},
		{"nothing", BackupRequest{}, "say what to back up"},
		{"both", BackupRequest{All: true, Units: []string{"volume/v"}}, "not both"},
		{"normal priority", BackupRequest{All: true, Priority: "normal"}, ""},
		{"bad priority", BackupRequest{All: true, Priority: "idle"}, "give low"},
		{"bad kind", BackupRequest{Units: []string{"pod/x"}}, "unknown kind"},
		{"no name", BackupRequest{Units: []string{"volume/"}}, "has no name"},
		{"bad mode", BackupRequest{Units: []string{"volume/v"}, Consistency: "freeze"}, "consistency"},
		{"bad images", BackupRequest{Units: []string{"volume/v"}, Images: "everything"}, "images"},
		{"one at a time", BackupRequest{All: true, Parallel: 1}, ""},
		{"negative parallel", BackupRequest{All: true, Parallel: -1}, "give 1 to 64 units at once"},
		{"too parallel", BackupRequest{All: true, Parallel: 65}, "give 1 to 64 units at once"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.req.Trigger != "manual" {
					t.Errorf("trigger %q, want manual by default", tc.req.Trigger)
				}
				return
			}
			wantInvalid(t, err, tc.want)
			_, err = Backup(t.Context(), untouchable(t), tc.req, Observer{})
			wantInvalid(t, err, tc.want)
		})
	}
}

func TestUpkeepRequestsValidate(t *testing.T) {
	env := untouchable(t)
	_, err := Forget(t.Context(), env, ForgetRequest{Keep: policy.Retention{Last: -1}}, Observer{})
	wantInvalid(t, err, "")
	_, err = Forget(t.Context(), env, ForgetRequest{Unit: "shop", Keep: policy.Retention{Last: 1}}, Observer{})
	wantInvalid(t, err, "write project/NAME")
	_, err = Check(t.Context(), env, CheckRequest{ReadData: 101}, Observer{})
	wantInvalid(t, err, "0 to 100")
	_, err = Replicate(t.Context(), env, ReplicateRequest{To: " "}, Observer{})
	wantInvalid(t, err, "--to")
	_, err = Restore(t.Context(), env, RestoreRequest{Point: "p", Path: "volumes/v"}, Observer{})
	wantInvalid(t, err, "path needs target")
}

func TestParsePercent(t *testing.T) {
	for in, want := range map[string]float64{"10": 10, "10%": 10, " 2.5% ": 2.5, "0": 0, "100%": 100} {
		if got, err := ParsePercent(in); err != nil || got != want {
			t.Errorf("ParsePercent(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "ten", "-1", "100.5", "50%%"} {
		if _, err := ParsePercent(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParsePercent(%q): %v, want invalid", in, err)
		}
	}
}

func TestRestoreValidateIsIdempotent(t *testing.T) {
	env := &Env{Confined: true, TargetRoots: []string{"/srv/restores"}}
	req := RestoreRequest{Point: "p", Container: "db", Target: "/srv/restores/db"}
	for i := range 2 {
		kind, err := req.Validate(env)
		if err != nil || kind != IntoDirectory || req.Path != "containers/db" {
			t.Fatalf("validation %d: %v %v path %q", i+1, kind, err, req.Path)
		}
	}
}

func TestDrillRequestValidate(t *testing.T) {
	for in, want := range map[string]string{
		"project/shop":         "project/shop@latest",
		" project/shop@latest": "project/shop@latest",
		"volume/x@2026-11-24":  "volume/x@2026-11-24",
		"3f2a91":               "3f2a91",
	} {
		r := DrillRequest{Point: in}
		if err := r.Validate(); err != nil || r.Point != want {
			t.Errorf("%q: %q %v, want %q", in, r.Point, err, want)
		}
	}
	env := untouchable(t)
	_, err := Drill(t.Context(), env, DrillRequest{Point: " "}, Observer{})
	wantInvalid(t, err, "which point")
	_, err = Drill(t.Context(), env, DrillRequest{Point: "project/shop", SettleSeconds: -1}, Observer{})
	wantInvalid(t, err, "settle")
}

func TestRestoreComposeDirValidate(t *testing.T) {
	confined := &Env{Confined: true, TargetRoots: []string{"/srv/restores"}}
	for _, tc := range []struct {
		name     string
		req      RestoreRequest
		fragment string
	}{
		{"relative when confined", RestoreRequest{Point: "p", ComposeDir: "shop"}, "relative"},
		{"outside the roots", RestoreRequest{Point: "p", ComposeDir: "/etc/shop"}, "outside restore.target_roots"},
		{"with target", RestoreRequest{Point: "p", ComposeDir: "/srv/restores/c", Target: "/srv/restores/t"}, "compose-dir goes with"},
		{"with dump", RestoreRequest{Point: "p", ComposeDir: "/srv/restores/c", Dump: true, Container: "db"}, "dump loads"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := tc.req.Validate(confined)
			wantInvalid(t, err, tc.fragment)
		})
	}
	req := RestoreRequest{Point: "p", As: "copy", ComposeDir: "/srv/restores/shop/../c"}
	if kind, err := req.Validate(confined); err != nil || kind != IntoUnit || req.ComposeDir != "/srv/restores/c" {
		t.Fatalf("compose-dir under a root: %v %v %q", kind, err, req.ComposeDir)
	}
}

func TestFromHost(t *testing.T) {
	env := &Env{}
	req := RestoreRequest{Point: "project/shop@latest", FromHost: "old"}
	for range 2 {
		if _, err := req.Validate(env); err != nil || req.Point != "old:project/shop@latest" {
			t.Fatalf("from-host: %q %v", req.Point, err)
		}
	}
	for _, tc := range []RestoreRequest{
		{Point: "3f2a91", FromHost: "old"},
		{Point: "new:project/shop@latest", FromHost: "old"},
		{Point: "project/shop@latest", FromHost: "a b"},
	} {
		if _, err := tc.Validate(env); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: %v, want invalid", tc, err)
		}
	}
	d := DrillRequest{Point: "project/shop", FromHost: "old"}
	if err := d.Validate(); err != nil || d.Point != "old:project/shop@latest" {
		t.Fatalf("drill from-host: %q %v", d.Point, err)
	}
}
