package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lifeboat-backup/lifeboat/internal/api"
	"github.com/lifeboat-backup/lifeboat/internal/ops"
)

// TestRestoreValidation runs the same restore requests through the CLI
// (the restore command, in-process) and the API (the JSON that POST
// /api/v1/jobs decodes, validated as the daemon does): both are one
// ops.RestoreRequest, so every check the CLI makes, the API makes too. They differ only where they should: the API is confined to
// restore.target_roots and refuses relative targets.
func TestRestoreValidation(t *testing.T) {
	root := t.TempDir()
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(root, "restored")
	for _, tc := range []struct {
		name string
		cli  []string // flags after the point
		api  string   // the restore object, without its point; "" : no API form
		// The error each front end gives, by a fragment; "" : valid.
		wantCLI, wantAPI string
		path             string // the narrowed path, when valid through the API
	}{
		{name: "whole unit", cli: nil, api: `{}`},
		{name: "one volume as a copy", cli: []string{"--volume", "data", "--as", "copy"}, api: `{"volume":"data","as":"copy"}`},
		{name: "one container", cli: []string{"--container", "db"}, api: `{"container":"db"}`},
		{name: "into a directory under a root", cli: []string{"--target", in}, api: `{"target":"` + in + `"}`},
		{name: "container into a directory is narrowed", cli: []string{"--container", "db", "--target", in}, api: `{"container":"db","target":"` + in + `"}`, path: "containers/db"},
		{name: "path without target", cli: []string{"--path", "volumes/data"}, api: `{"path":"volumes/data"}`, wantCLI: "path needs target", wantAPI: "path needs target"},
		{name: "as with target", cli: []string{"--target", in, "--as", "x"}, api: `{"target":"` + in + `","as":"x"}`, wantCLI: "as names", wantAPI: "as names"},
		{name: "volume and container", cli: []string{"--volume", "v", "--container", "c"}, api: `{"volume":"v","container":"c"}`, wantCLI: "not both", wantAPI: "not both"},
		{name: "container and path", cli: []string{"--container", "c", "--path", "p", "--target", in}, api: `{"container":"c","path":"p","target":"` + in + `"}`, wantCLI: "container or path", wantAPI: "container or path"},
		{name: "relative target", cli: []string{"--target", "restored"}, api: `{"target":"restored"}`, wantAPI: "is relative"},
		{name: "target outside the roots", cli: []string{"--target", outside}, api: `{"target":"` + outside + `"}`, wantAPI: "outside restore.target_roots"},
		{name: "dot-dot out of a root", cli: []string{"--target", root + "/../x"}, api: `{"target":"` + root + `/../x"}`, wantAPI: "outside restore.target_roots"},
		{name: "symlink out of a root", cli: []string{"--target", root + "/escape/x"}, api: `{"target":"` + root + `/escape/x"}`, wantAPI: "outside restore.target_roots"},
		{name: "image-only with target", cli: []string{"--image-only", "--target", in}, api: `{"image_only":true,"target":"` + in + `"}`, wantCLI: "image-only", wantAPI: "image-only"},
		{name: "into without dump", cli: []string{"--into", "c"}, api: `{"into":"c"}`, wantCLI: "into and with-users go with dump", wantAPI: "into and with-users go with dump"},
		{name: "dump without container", cli: []string{"--dump"}, api: `{"dump":true}`, wantCLI: "dump needs container", wantAPI: "dump needs container"},
		{name: "dump with target", cli: []string{"--dump", "--container", "c", "--target", in}, api: `{"dump":true,"container":"c","target":"` + in + `"}`, wantCLI: "dump loads into a running container", wantAPI: "dump loads into a running container"},
		{name: "dump dry run", cli: []string{"--dump", "--container", "c", "--dry-run"}, api: `{"dump":true,"container":"c","dry_run":true}`, wantCLI: "dump has no dry run", wantAPI: "dump has no dry run"},
		{name: "dump into another", cli: []string{"--dump", "--container", "c", "--into", "d", "--with-users"}, api: `{"dump":true,"container":"c","into":"d","with_users":true}`},
		{name: "images only", cli: []string{"--image-only"}, api: `{"image_only":true}`},
		{name: "dry run of a copy", cli: []string{"--as", "copy", "--dry-run"}, api: `{"as":"copy","dry_run":true}`},
		{name: "copy with shifted ports", cli: []string{"--as", "copy", "--ports", "shift=1000"}, api: `{"as":"copy","ports":"shift=1000"}`},
		{name: "in place publishing nothing", cli: []string{"--ports", "none"}, api: `{"ports":"none"}`},
		{name: "one container with shifted ports", cli: []string{"--container", "web", "--ports", "shift=1"}, api: `{"container":"web","ports":"shift=1"}`},
		{name: "ports shift zero", cli: []string{"--as", "copy", "--ports", "shift=0"}, api: `{"as":"copy","ports":"shift=0"}`, wantCLI: "shift takes a whole number from 1", wantAPI: "shift takes a whole number from 1"},
		{name: "ports shift past the last port", cli: []string{"--ports", "shift=70000"}, api: `{"ports":"shift=70000"}`, wantCLI: "shift takes a whole number from 1 to 65534", wantAPI: "shift takes a whole number from 1 to 65534"},
		{name: "ports unknown", cli: []string{"--ports", "keep"}, api: `{"ports":"keep"}`, wantCLI: "give none", wantAPI: "give none"},
		{name: "ports with a volume", cli: []string{"--volume", "data", "--ports", "none"}, api: `{"volume":"data","ports":"none"}`, wantCLI: "ports goes with a restore of containers", wantAPI: "ports goes with a restore of containers"},
		{name: "ports with a target", cli: []string{"--target", in, "--ports", "none"}, api: `{"target":"` + in + `","ports":"none"}`, wantCLI: "ports goes with", wantAPI: "ports goes with"},
		{name: "ports with image-only", cli: []string{"--image-only", "--ports", "shift=5"}, api: `{"image_only":true,"ports":"shift=5"}`, wantCLI: "ports goes with", wantAPI: "ports goes with"},
		{name: "ports with dump", cli: []string{"--dump", "--container", "c", "--ports", "none"}, api: `{"dump":true,"container":"c","ports":"none"}`, wantCLI: "as, ports or image-only", wantAPI: "as, ports or image-only"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			check := func(front string, err error, want string) {
				t.Helper()
				switch {
				case want == "" && errors.Is(err, ops.ErrInvalid):
					t.Errorf("%s refused a valid request: %v", front, err)
				case want != "" && (!errors.Is(err, ops.ErrInvalid) || !strings.Contains(err.Error(), want)):
					t.Errorf("%s: %v, want an invalid-request error with %q", front, err, want)
				}
			}
			cliErr := runRestoreCLI(t, tc.cli)
			check("CLI", cliErr, tc.wantCLI)
			if tc.wantCLI == "" && (cliErr == nil || !strings.Contains(cliErr.Error(), "no repository")) {
				t.Errorf("CLI: %v, want it past validation, failing on the missing repository", cliErr)
			}
			if tc.api == "" {
				return
			}
			// What POST /api/v1/jobs decodes, validated as the daemon
			// does: confined to its target roots.
			var req api.JobRequest
			if err := json.Unmarshal([]byte(`{"kind":"restore","restore":`+tc.api+`}`), &req); err != nil {
				t.Fatal(err)
			}
			req.Restore.Point = "volume/data@latest"
			_, err := req.Restore.Validate(&ops.Env{Confined: true, TargetRoots: []string{root}})
			check("API", err, tc.wantAPI)
			if err == nil && req.Restore.Path != tc.path {
				t.Errorf("API narrowed path to %q, want %q", req.Restore.Path, tc.path)
			}
		})
	}
	t.Run("no roots: the API restores into Docker only", func(t *testing.T) {
		req := ops.RestoreRequest{Point: "p", Target: in}
		_, err := req.Validate(&ops.Env{Confined: true})
		if !errors.Is(err, ops.ErrInvalid) || !strings.Contains(err.Error(), "target_roots") {
			t.Fatalf("%v", err)
		}
	})
}

// runRestoreCLI runs `lifeboat restore` in-process against a repository
// that does not exist: a request that passes validation fails on opening
// it, after validation, and touches nothing.
func runRestoreCLI(t *testing.T, flags []string) error {
	t.Helper()
	g := &globalOptions{repository: filepath.Join(t.TempDir(), "no-repo"), passwordFile: filepath.Join(t.TempDir(), "no-password"),
		stateDir: t.TempDir(), log: slog.New(slog.DiscardHandler)}
	cmd := newRestoreCommand(g)
	cmd.SetArgs(append([]string{"volume/data@latest"}, flags...))
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	return cmd.ExecuteContext(t.Context())
}
