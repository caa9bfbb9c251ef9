package replicate

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/kopia/kopia/repo/blob"
)

// Lock is the object-lock retention of a copy's blobs.
type Lock struct {
	Mode   blob.RetentionMode // Governance or Compliance; "" for none
	Period time.Duration
}

// The lock modes of S3 object lock: a governance lock may be lifted by
// keys with the s3:BypassGovernanceRetention permission, a compliance
// lock by nobody until it ends.
const (
	Governance = blob.Governance
	Compliance = blob.Compliance
)

// On reports whether blobs are to be locked.
func (l Lock) On() bool { return l.Mode != "" && l.Period > 0 }

// MinLockPeriod is the shortest lock: a copy locked for less than a day
// would be unlocked again before anyone noticed an attack.
const MinLockPeriod = 24 * time.Hour

// ParseLock reads a lock as the flags and the config file give it: a mode,
// governance or compliance, and a period of at least a day.
func ParseLock(mode, period string) (Lock, error) {
	var l Lock
	switch strings.ToLower(mode) {
	case "governance":
		l.Mode = Governance
	case "compliance":
		l.Mode = Compliance
	default:
		return l, fmt.Errorf("lock mode %q: use governance or compliance (--lock-mode, offsite.lock.mode)", mode)
	}
	d, err := ParsePeriod(period)
	if err != nil || d < MinLockPeriod {
		return l, fmt.Errorf("lock period %q: give at least a day, as 30d or 720h (--lock-period, offsite.lock.period)", period)
	}
	l.Period = d
	return l, nil
}

// ParsePeriod reads a duration as people write retention: 30d, or one Go
// understands (720h).
func ParsePeriod(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 || n > 100*365 {
			return 0, fmt.Errorf("period %q: write a number of days, as 30d", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("period %q: write 30d or 720h", s)
	}
	return d, nil
}
