// Package failpoint lets end-to-end tests stop lifeboat at a chosen point
// of its work, so they can kill it exactly there. It does nothing unless
// LIFEBOAT_TEST_FAILPOINT names the point.
package failpoint

import (
	"fmt"
	"os"
	"sync"
	"time"
)

var (
	once   sync.Once
	active string
)

// Hit blocks forever when LIFEBOAT_TEST_FAILPOINT is name, after printing
// "failpoint NAME" on stderr for the test to wait for.
func Hit(name string) {
	once.Do(func() { active = os.Getenv("LIFEBOAT_TEST_FAILPOINT") })
	if active == "" || active != name {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s\n", name)
	select {}
}

// Sleep pauses for d when LIFEBOAT_TEST_FAILPOINT is name, after printing
// "failpoint NAME" on stderr: a test slows a step down to act in between.
func Sleep(name string, d time.Duration) {
	once.Do(func() { active = os.Getenv("LIFEBOAT_TEST_FAILPOINT") })
	if active == "" || active != name {
		return
	}
	fmt.Fprintf(os.Stderr, "failpoint %s\n", name)
	time.Sleep(d)
}
