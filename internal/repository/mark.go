package repository

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"time"

	"github.com/kopia/kopia/repo"
	"github.com/kopia/kopia/repo/manifest"
)

// An acknowledgement is a small manifest of its own beside the point it
// accepts: a restore point's record cannot change without changing its ID,
// and any host that opens the repository sees both.
const (
	ackType       = "lifeboat-ack"
	ackLabelPoint = "lifeboat.point"
	ackLabelUnit  = "lifeboat.unit"
)

// ErrNotSuspect means an acknowledgement was asked for a point the anomaly
// guard did not mark.
var ErrNotSuspect = errors.New("restore point is not suspect")

type ackRecord struct {
	Point string    `json:"point"`
	Unit  string    `json:"unit"`
	Time  time.Time `json:"time"`
	Host  string    `json:"host"`
	User  string    `json:"user,omitempty"`
}

// AckResult says what Ack did.
type AckResult struct {
	Point
	// Already is true when the point had been acknowledged before.
	Already bool `json:"already_acked"`
}

// Ack records that a suspect point's anomaly is accepted: from then on it
// counts as a good point, and retention treats its unit normally again.
// Acknowledging a point twice changes nothing.
func (r *Repository) Ack(ctx context.Context, ref string) (AckResult, error) {
	p, err := r.Resolve(ctx, ref)
	if err != nil {
		return AckResult{}, err
	}
	if !p.Suspect {
		return AckResult{}, fmt.Errorf("%w: %s of %s looked like its history; nothing to acknowledge", ErrNotSuspect, p.ID, p.Unit)
	}
	if p.Acked {
		return AckResult{Point: p, Already: true}, nil
	}
	rec := ackRecord{Point: p.ID, Unit: p.Unit, Time: time.Now().UTC(), Host: r.hostname}
	if u, err := user.Current(); err == nil {
		rec.User = u.Username
	}
	err = repo.WriteSession(ctx, r.rep, repo.WriteSessionOptions{Purpose: "lifeboat:ack"},
		func(ctx context.Context, w repo.RepositoryWriter) error {
			_, err := w.PutManifest(ctx, map[string]string{
				manifest.TypeLabelKey: ackType, ackLabelPoint: p.ID, ackLabelUnit: p.Unit,
			}, rec)
			return err
		})
	if err != nil {
		return AckResult{}, fmt.Errorf("acknowledge restore point %s: %w", p.ID, err)
	}
	p.Acked = true
	return AckResult{Point: p}, nil
}

// acks maps each acknowledged point's ID to its acknowledgements' IDs.
// Only labels are read, as listings do.
func (r *Repository) acks(ctx context.Context) (map[string][]manifest.ID, error) {
	ms, err := r.rep.FindManifests(ctx, map[string]string{manifest.TypeLabelKey: ackType})
	if err != nil {
		return nil, fmt.Errorf("list acknowledgements: %w", err)
	}
	out := map[string][]manifest.ID{}
	for _, m := range ms {
		if id := m.Labels[ackLabelPoint]; id != "" {
			out[id] = append(out[id], m.ID)
		}
	}
	return out, nil
}
