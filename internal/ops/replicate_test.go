package ops

import (
	"testing"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/replicate"
)

func TestReplicateLockValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  ReplicateRequest
		want string // "" valid
		lock replicate.Lock
	}{
		{"no lock", ReplicateRequest{To: "/mnt/copy"}, "", replicate.Lock{}},
		{"compliance 30d", ReplicateRequest{To: "s3://b/p", LockMode: "compliance", LockPeriod: "30d"}, "",
			replicate.Lock{Mode: replicate.Compliance, Period: 30 * 24 * time.Hour}},
		{"governance 720h", ReplicateRequest{To: "s3://b", LockMode: "GOVERNANCE", LockPeriod: "720h"}, "",
			replicate.Lock{Mode: replicate.Governance, Period: 720 * time.Hour}},
		{"one day is the least", ReplicateRequest{To: "s3://b", LockMode: "compliance", LockPeriod: "1d"}, "",
			replicate.Lock{Mode: replicate.Compliance, Period: 24 * time.Hour}},
		{"less than a day", ReplicateRequest{To: "s3://b", LockMode: "compliance", LockPeriod: "23h"}, "at least a day", replicate.Lock{}},
		{"zero days", ReplicateRequest{To: "s3://b", LockMode: "compliance", LockPeriod: "0d"}, "at least a day", replicate.Lock{}},
		{"a word for a period", ReplicateRequest{To: "s3://b", LockMode: "compliance", LockPeriod: "month"}, "30d or 720h", replicate.Lock{}},
		{"mode without period", ReplicateRequest{To: "s3://b", LockMode: "compliance"}, "at least a day", replicate.Lock{}},
		{"period without mode", ReplicateRequest{To: "s3://b", LockPeriod: "30d"}, "governance or compliance", replicate.Lock{}},
		{"unknown mode", ReplicateRequest{To: "s3://b", LockMode: "legal-hold", LockPeriod: "30d"}, "governance or compliance", replicate.Lock{}},
		{"a directory cannot be locked", ReplicateRequest{To: "/mnt/copy", LockMode: "compliance", LockPeriod: "30d"}, "needs an S3 copy", replicate.Lock{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.want != "" {
				wantInvalid(t, err, tc.want)
				_, err = Replicate(t.Context(), untouchable(t), tc.req, Observer{})
				wantInvalid(t, err, tc.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if l, _ := tc.req.lock(); l != tc.lock {
				t.Fatalf("lock %+v, want %+v", l, tc.lock)
			}
		})
	}
}
