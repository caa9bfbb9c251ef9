//go:build !lifeboattest

package failpoint

import "time"

const enabled = false

// Hit does nothing in a release build.
func Hit(string) {}

// Sleep does nothing in a release build.
func Sleep(string, time.Duration) {}

// Mark does nothing in a release build.
func Mark(string) {}
