package repository

import (
	"errors"
	"fmt"
)

// ErrKeyDerivation is a key derivation Init does not know.
var ErrKeyDerivation = errors.New("unknown key derivation")

// keyDerivations are the ways Init turns a password into the repository's
// key, by the name a user gives, as kopia names them in the format blob;
// the stock kopia CLI opens both.
//   - scrypt (the default, kopia's): memory-hard, so guessing passwords on
//     GPUs costs memory as well as time. About 0.15 s of one core and
//     64 MiB on every open (0.4 s where its memory cannot come in huge
//     pages: see kdfHeap).
//   - pbkdf2: PBKDF2-HMAC-SHA256, 600,000 rounds (OWASP's figure); the one
//     FIPS 140 approves, for hosts that must use only that. About 0.1 s.
var keyDerivations = map[string]string{
	"scrypt": "scrypt-65536-8-1",
	"pbkdf2": "pbkdf2-sha256-600000",
}

// keyDerivation is kopia's name for a user's choice. "" stays "": kopia's
// default, scrypt (in kopia's test build, which the packages' tests use, a
// single SHA-256).
func keyDerivation(name string) (string, error) {
	if name == "" {
		return "", nil
	}
	algo, ok := keyDerivations[name]
	if !ok {
		return "", fmt.Errorf("%w %q: use scrypt (the default) or pbkdf2", ErrKeyDerivation, name)
	}
	return algo, nil
}
