package ops

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/replicate"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// ErrOffsiteUnproven means a check of the offsite copy's lock failed: the
// copy may not survive someone with the host's keys.
var ErrOffsiteUnproven = errors.New("the offsite copy's lock is not proven")

// VerifyOffsiteRequest asks the S3 server to prove the copy at To is
// locked.
type VerifyOffsiteRequest struct {
	To string `json:"to"` // s3://BUCKET/PREFIX
	// LockMode, governance or compliance, is the lock every blob must
	// carry; "" accepts either.
	LockMode string `json:"lock_mode,omitempty"`
}

// Validate checks the request.
func (r VerifyOffsiteRequest) Validate() error {
	if !repository.IsS3(r.To) {
		return fmt.Errorf("%w: say which offsite copy to verify: --to s3://BUCKET/PREFIX (or offsite.to in the config file)", ErrInvalid)
	}
	if r.LockMode != "" {
		if _, err := replicate.ParseLock(r.LockMode, "1d"); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalid, err)
		}
	}
	return nil
}

// OffsiteCheck is one check of the copy, and what the server did.
type OffsiteCheck struct {
	Name   string `json:"name"` // bucket-lock, blob-retention, canary-delete, canary-overwrite
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// VerifyOffsiteResult is every check, passed or failed.
type VerifyOffsiteResult struct {
	To          string         `json:"to"`
	OK          bool           `json:"ok"`
	Checks      []OffsiteCheck `json:"checks"`
	Blobs       int64          `json:"blobs"`
	BlobsLocked int64          `json:"blobs_locked"`
	// LockedUntil is the earliest end of a blob's lock.
	LockedUntil *time.Time `json:"locked_until,omitempty"`
	CanaryKey   string     `json:"canary,omitempty"`
}

// VerifyOffsite checks, with the server itself, that the copy's blobs are
// locked and that these keys cannot remove or rewrite a locked object: it
// passes only when the server refuses. Every check runs even after one
// fails; the error wraps ErrOffsiteUnproven when any failed.
func VerifyOffsite(ctx context.Context, env *Env, req VerifyOffsiteRequest, obs Observer) (VerifyOffsiteResult, error) {
	res := VerifyOffsiteResult{To: req.To}
	if err := req.Validate(); err != nil {
		return res, err
	}
	probe, err := repository.OpenLockProbe(ctx, req.To)
	if err != nil {
		return res, fmt.Errorf("verify offsite: %w", err)
	}
	mode := strings.ToLower(req.LockMode)
	bucketMode, err := probe.BucketLock(ctx)
	res.add("bucket-lock", err == nil, errText(err, "object lock enabled"+withMode(bucketMode)))
	seen, err := res.checkBlobs(ctx, probe, mode)
	if err != nil {
		return res, fmt.Errorf("verify offsite %s: %w", probe.Location(), err)
	}
	// The canary is locked as the copy is: the mode asked for, else the
	// blobs', else the bucket's default, else the stricter one.
	mode = firstOf(mode, seen, bucketMode, "compliance")
	c, err := probe.TryCanary(ctx, mode, replicate.MinLockPeriod)
	res.CanaryKey = c.Key
	switch {
	case ctx.Err() != nil:
		return res, ctx.Err()
	case err != nil:
		res.add("canary-delete", false, err.Error())
		res.add("canary-overwrite", false, err.Error())
	default:
		res.addCanary(c, mode)
	}
	res.OK = true
	log := obs.log(env)
	for _, ch := range res.Checks {
		res.OK = res.OK && ch.OK
		log.Info("offsite check", "check", ch.Name, "ok", ch.OK, "detail", ch.Detail)
	}
	if !res.OK {
		return res, fmt.Errorf("verify offsite %s: %w", probe.Location(), ErrOffsiteUnproven)
	}
	return res, nil
}

// checkBlobs checks every object of the copy for a lock of mode (any when
// ""), still in force, and returns the mode the locked ones carry.
func (res *VerifyOffsiteResult) checkBlobs(ctx context.Context, probe *repository.LockProbe, mode string) (string, error) {
	now := time.Now()
	var bad []string
	seen := ""
	unlockable := 0
	err := probe.Retentions(ctx, 8, func(r repository.Retention) {
		res.Blobs++
		switch {
		case r.Err == nil && r.Mode == "" && !repository.KopiaLocks(r.Key):
			// A repository made on S3 with a lock: kopia locks what
			// points need, never its logs or maintenance schedule.
			unlockable++
		case r.Err != nil:
			bad = append(bad, r.Key+": "+r.Err.Error())
		case r.Mode == "" || !r.Until.After(now):
			bad = append(bad, r.Key+": not locked")
		case mode != "" && r.Mode != mode:
			bad = append(bad, r.Key+": locked in "+r.Mode+" mode")
		default:
			res.BlobsLocked++
			seen = r.Mode
			if res.LockedUntil == nil || r.Until.Before(*res.LockedUntil) {
				u := r.Until
				res.LockedUntil = &u
			}
		}
	})
	if err != nil {
		return seen, err
	}
	want := "locked"
	if mode != "" {
		want = "locked in " + mode + " mode"
	}
	switch {
	case res.Blobs == 0:
		res.add("blob-retention", false, "the copy holds no blobs: run lifeboat replicate first")
	case len(bad) > 0:
		res.add("blob-retention", false, fmt.Sprintf("%d of %d blobs not %s, as %s", len(bad), res.Blobs, want, strings.Join(bad[:min(3, len(bad))], "; ")))
	case res.BlobsLocked == 0:
		res.add("blob-retention", false, fmt.Sprintf("none of %d blobs is locked", res.Blobs))
	case unlockable > 0:
		res.add("blob-retention", true, fmt.Sprintf("all %d blobs of points %s, until %s or later (%d log and maintenance blobs, which kopia never locks, not)",
			res.BlobsLocked, want, res.LockedUntil.UTC().Format(time.RFC3339), unlockable))
	default:
		res.add("blob-retention", true, fmt.Sprintf("all %d blobs %s, until %s or later", res.Blobs, want, res.LockedUntil.UTC().Format(time.RFC3339)))
	}
	return seen, nil
}

func (res *VerifyOffsiteResult) addCanary(c repository.Canary, mode string) {
	switch {
	case !c.DeleteRefused:
		res.add("canary-delete", false, "the server deleted the locked version of "+c.Key+": these keys can destroy the copy")
	case mode == "governance" && !c.BypassRefused:
		res.add("canary-delete", false, "the server deleted the governance-locked "+c.Key+" when asked to bypass governance: "+
			"these keys have s3:BypassGovernanceRetention; remove it, or lock in compliance mode")
	default:
		res.add("canary-delete", true, "deleting the "+mode+"-locked version of "+c.Key+" was refused: "+c.DeleteError)
	}
	if c.Kept {
		res.add("canary-overwrite", true, "after an overwrite the locked version of "+c.Key+" is still there, unchanged")
	} else {
		res.add("canary-overwrite", false, "after the delete attempts and an overwrite the locked version of "+c.Key+" is gone or changed")
	}
}

func (res *VerifyOffsiteResult) add(name string, ok bool, detail string) {
	res.Checks = append(res.Checks, OffsiteCheck{Name: name, OK: ok, Detail: detail})
}

func errText(err error, ok string) string {
	if err != nil {
		return err.Error()
	}
	return ok
}

func withMode(m string) string {
	if m == "" {
		return ", no default lock"
	}
	return ", default " + m
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
