//go:build lifeboattest

package unitlock

import (
	"os"
	"time"
)

// Kill tests cannot wait a minute for a dead holder's lease to expire:
// test builds (only) read a shorter TTL from the environment.
func init() {
	if d, err := time.ParseDuration(os.Getenv("LIFEBOAT_TEST_LEASE_TTL")); err == nil && d > 0 {
		LeaseTTL = d
	}
}
