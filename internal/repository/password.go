package repository

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/secret"
)

// PasswordSource says where the repository password comes from, in the order
// Resolve tries them.
type PasswordSource struct {
	File     string       // LIFEBOAT_PASSWORD_FILE
	Value    secret.Value // LIFEBOAT_PASSWORD
	Prompt   func(confirm bool) (secret.Value, error)
	Generate bool // create a random password file beside a new repository
}

// ErrNoPassword means no password was given and none could be asked for.
var ErrNoPassword = errors.New("no repository password: set LIFEBOAT_PASSWORD_FILE or LIFEBOAT_PASSWORD, or run on a terminal to be asked")

// ErrEmptyPassword means the password file holds no password. An empty
// file is never taken as the password "": that would encrypt a new
// repository with nothing, or hide a file written half-way.
var ErrEmptyPassword = errors.New("empty password file")

// PasswordFileFor is the file beside a repository that holds its generated
// password.
func PasswordFileFor(repoPath string) string { return repoPath + ".password" }

func readPasswordFile(path string) (secret.Value, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return secret.Value{}, fmt.Errorf("read password file %s: %w", path, err)
	}
	pw := strings.TrimRight(string(b), "\r\n")
	if pw == "" {
		return secret.Value{}, fmt.Errorf("%w %s", ErrEmptyPassword, path)
	}
	return secret.New(pw), nil
}

// resolvePassword finds the password of an existing repository (creating is
// false) or of one about to be created. generated reports whether a new
// password file was written, so the caller can tell the user once.
func resolvePassword(src PasswordSource, loc Location, creating bool) (pw secret.Value, generated bool, err error) {
	if src.File != "" {
		pw, err = readPasswordFile(src.File)
		return pw, false, err
	}
	if !src.Value.IsZero() {
		return src.Value, false, nil
	}
	// A repository on S3 has no file beside it: a file in the bucket would
	// sit next to the data it unlocks, and the bucket is the offsite copy
	// that must stay safe when its keys leak.
	if loc.Kind == KindFile {
		beside := PasswordFileFor(loc.Path)
		if _, err := os.Stat(beside); err == nil {
			pw, err = readPasswordFile(beside)
			return pw, false, err
		}
		if creating && src.Generate {
			pw, err = generatePasswordFile(beside)
			return pw, err == nil, err
		}
	}
	err = ErrNoPassword
	if src.Prompt != nil {
		if pw, err = src.Prompt(creating); err == nil {
			return pw, false, nil
		}
	}
	if loc.Kind == KindS3 && errors.Is(err, ErrNoPassword) {
		err = fmt.Errorf("repository %s keeps no password file beside it: %w", loc, err)
	}
	return secret.Value{}, false, err
}

func generatePasswordFile(path string) (secret.Value, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return secret.Value{}, fmt.Errorf("generate password: %w", err)
	}
	pw := base64.RawURLEncoding.EncodeToString(b)
	if err := os.MkdirAll(dirOf(path), 0o700); err != nil {
		return secret.Value{}, fmt.Errorf("create directory for password file: %w", err)
	}
	tmp, err := os.CreateTemp(dirOf(path), ".password-*")
	if err != nil {
		return secret.Value{}, fmt.Errorf("create password file %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.WriteString(pw + "\n")
	if err := errors.Join(werr, tmp.Chmod(0o600), tmp.Sync(), tmp.Close()); err != nil {
		return secret.Value{}, fmt.Errorf("write password file %s: %w", path, err)
	}
	// A hard link publishes the complete file or fails if another first run
	// got there before us; then both use the one that won.
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		return readPasswordFile(path)
	} else if err != nil {
		return secret.Value{}, fmt.Errorf("create password file %s: %w", path, err)
	}
	return secret.New(pw), nil
}

func dirOf(p string) string {
	i := strings.LastIndexByte(p, '/')
	if i <= 0 {
		return "/"
	}
	return p[:i]
}
