// Package failpoint lets end-to-end tests stop lifeboat at a chosen point
// of its work, so they can kill it exactly there.
//
// Failpoints exist only in test builds (go build -tags lifeboattest): in a
// release binary Hit and Sleep are empty, and LIFEBOAT_TEST_FAILPOINT is
// not even read, so a stray variable in production cannot leave
// containers paused for ever.
package failpoint

// Enabled reports whether this binary was built with failpoints.
const Enabled = enabled
