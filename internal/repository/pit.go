package repository

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrPointInTime marks a point-in-time view asked of something it cannot
// serve: a repository that is not on S3, or a command that writes.
var ErrPointInTime = errors.New("point-in-time view")

// ParsePointInTime reads --point-in-time: an RFC 3339 time
// (2026-12-01T22:00:00Z), or a duration before now written DURATION-ago
// (90m-ago, 2h30m-ago, 3d-ago).
func ParsePointInTime(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if d, ok := strings.CutSuffix(s, "-ago"); ok {
		dur, err := parseAgo(d)
		if err != nil || dur <= 0 {
			return time.Time{}, fmt.Errorf("%w %q: write a duration before now as 90m-ago, 2h-ago or 3d-ago", ErrPointInTime, s)
		}
		return now.Add(-dur).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w %q: write a time as 2026-12-01T22:00:00Z (RFC 3339) or a duration before now as 2h-ago", ErrPointInTime, s)
	}
	if t.After(now) {
		return time.Time{}, fmt.Errorf("%w %s is in the future: give a moment before the damage", ErrPointInTime, t.UTC().Format(time.RFC3339))
	}
	return t.UTC(), nil
}

func parseAgo(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n > 100*365 {
			return 0, fmt.Errorf("days %q", days)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(s)
}

// CheckPointInTime says whether opts can be opened as they ask for a
// point-in-time view, without opening anything.
func CheckPointInTime(opts Options) error {
	loc, err := ParseLocation(opts.Location)
	if err != nil {
		return err
	}
	return checkPointInTime(opts, &loc)
}

// checkPointInTime refuses a point-in-time view where it cannot be
// served, and puts it into an S3 location. A view is read-only: kopia
// wraps it so, and a write refused blob by blob after the command began
// would leave half its work done; it is refused before anything starts.
func checkPointInTime(opts Options, loc *Location) error {
	if opts.PointInTime.IsZero() {
		return nil
	}
	if loc.Kind != KindS3 {
		return fmt.Errorf("%w: --point-in-time reads the object versions of an S3 bucket, and %s is a local directory: use it with --repository s3://BUCKET/PREFIX", ErrPointInTime, loc)
	}
	if !opts.ReadOnly {
		return fmt.Errorf("%w: the repository as of %s is read-only and this command writes to it: list and restore with --point-in-time, run this one without it",
			ErrPointInTime, opts.PointInTime.UTC().Format(time.RFC3339))
	}
	t := opts.PointInTime.UTC()
	loc.S3.PointInTime = &t
	return nil
}

// viewStateDir makes a point-in-time view's connection state and cache
// directory beside the location's, for this process alone: a view is
// opened for one recovery, a relative moment (2h-ago) is a new one at
// every run, and the S3 content cache may grow to gigabytes; Close
// removes it. Only a killed process leaves one behind.
func viewStateDir(dir string) (string, error) {
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return "", fmt.Errorf("create repository state dir: %w", err)
	}
	d, err := os.MkdirTemp(parent, filepath.Base(dir)+"-view-")
	if err != nil {
		return "", fmt.Errorf("create repository state dir: %w", err)
	}
	return d, nil
}
