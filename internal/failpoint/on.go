//go:build lifeboattest

package failpoint

import (
	"fmt"
	"os"
	"sync"
	"time"
)

const enabled = true

// envVar names the failpoint to stop at.
const envVar = "LIFEBOAT_TEST_FAILPOINT"

var (
	once   sync.Once
	active string
)

func armed(name string) bool {
	once.Do(func() { active = os.Getenv(envVar) })
	if active == "" || active != name {
		return false
	}
	fmt.Fprintf(os.Stderr, "failpoint %s\n", name)
	return true
}

// Hit blocks forever when LIFEBOAT_TEST_FAILPOINT is name, after printing
// "failpoint NAME" on stderr for the test to wait for.
func Hit(name string) {
	if armed(name) {
		// A sleep, not select{}: with nothing else alive the runtime
		// would call a bare select a deadlock and exit.
		for {
			time.Sleep(time.Hour)
		}
	}
}

// Sleep pauses for d when LIFEBOAT_TEST_FAILPOINT is name, after printing
// "failpoint NAME" on stderr: a test slows a step down to act in between.
func Sleep(name string, d time.Duration) {
	if armed(name) {
		time.Sleep(d)
	}
}

// Mark prints "failpoint NAME" on stderr when LIFEBOAT_TEST_FAILPOINT is
// name, and goes on: a test times its kill from that moment, for a step
// (a stop's grace period, an upload) that no blocking failpoint can stand
// for.
func Mark(name string) { armed(name) }
