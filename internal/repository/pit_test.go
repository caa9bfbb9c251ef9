package repository

import (
	"errors"
	"testing"
	"time"
)

func TestParsePointInTime(t *testing.T) {
	now := time.Date(2026, 12, 2, 6, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-12-01T22:00:00Z", time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC), true},
		{"2026-12-02T07:00:00+02:00", time.Date(2026, 12, 2, 5, 0, 0, 0, time.UTC), true},
		{"90m-ago", now.Add(-90 * time.Minute), true},
		{"2h30m-ago", now.Add(-150 * time.Minute), true},
		{"3d-ago", now.Add(-72 * time.Hour), true},
		{"2026-12-03T00:00:00Z", time.Time{}, false}, // the future
		{"0s-ago", time.Time{}, false},
		{"-1h-ago", time.Time{}, false},
		{"yesterday", time.Time{}, false},
		{"2h", time.Time{}, false},
		{"xd-ago", time.Time{}, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePointInTime(tc.in, now)
			if tc.ok != (err == nil) || !got.Equal(tc.want) {
				t.Fatalf("ParsePointInTime(%q) = %v, %v; want %v (ok %v)", tc.in, got, err, tc.want, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrPointInTime) {
				t.Fatalf("error %v is not ErrPointInTime", err)
			}
		})
	}
}

func TestCheckPointInTime(t *testing.T) {
	pit := time.Date(2026, 12, 1, 22, 0, 0, 0, time.UTC)
	s3 := Location{Kind: KindS3, S3: S3Location{Bucket: "b", Endpoint: "127.0.0.1:9000"}}
	file := Location{Kind: KindFile, Path: "/srv/repo"}
	for _, tc := range []struct {
		name string
		opts Options
		loc  Location
		ok   bool
	}{
		{"no view", Options{}, file, true},
		{"s3 read-only", Options{PointInTime: pit, ReadOnly: true}, s3, true},
		{"s3 write", Options{PointInTime: pit}, s3, false},
		{"directory", Options{PointInTime: pit, ReadOnly: true}, file, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := tc.loc
			err := checkPointInTime(tc.opts, &loc)
			if tc.ok != (err == nil) {
				t.Fatalf("checkPointInTime: %v, want ok %v", err, tc.ok)
			}
			if tc.ok && !tc.opts.PointInTime.IsZero() {
				if loc.S3.PointInTime == nil || !loc.S3.PointInTime.Equal(pit) || loc.stateKey() == tc.loc.stateKey() {
					t.Fatalf("view not in the location: %+v, state key %q", loc.S3, loc.stateKey())
				}
			}
		})
	}
}
