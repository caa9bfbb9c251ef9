package ops

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/backup"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
)

// RecoverRequest brings a host back from a repository alone, typically
// an offsite copy on S3: lifeboat's own state first, then every unit (or
// the ones named) from its newest point, in dependency order.
type RecoverRequest struct {
	// From is the copy, as the global repository flag takes it
	// (s3://BUCKET/PREFIX). The front end opens it as env's repository.
	From string `json:"from"`
	// Units are the units to bring back; none: every unit of the host.
	Units []string `json:"units,omitempty"`
	// FromHost is the host whose points to restore; "" when the copy
	// holds a single host's.
	FromHost string `json:"from_host,omitempty"`
	// List only says what the copy holds, and restores nothing.
	List bool `json:"list,omitempty"`
	// NoState leaves lifeboat's own state (config, job history) alone.
	NoState bool `json:"no_state,omitempty"`
	NoWait  bool `json:"-"`
}

// Validate checks the request without touching anything.
func (r *RecoverRequest) Validate() error {
	r.From = strings.TrimSpace(r.From)
	if r.From == "" {
		return fmt.Errorf("%w: say where to recover from: --from s3://BUCKET/PREFIX (LIFEBOAT_S3_ENDPOINT and the keys in the environment)", ErrInvalid)
	}
	if r.List && len(r.Units) > 0 {
		return fmt.Errorf("%w: list shows the whole copy: give no units with it", ErrInvalid)
	}
	for _, u := range r.Units {
		kind, name, ok := strings.Cut(u, "/")
		if !ok || kind == "" || name == "" || strings.ContainsAny(u, "@: ") {
			return fmt.Errorf("%w: unit %q: name units as in `recover --list`, like project/NAME, container/NAME or volume/NAME", ErrInvalid, u)
		}
		if u == StateUnit {
			return fmt.Errorf("%w: %s is restored first unless --no-state: do not name it", ErrInvalid, StateUnit)
		}
	}
	if strings.ContainsAny(r.FromHost, ":@/ ") {
		return fmt.Errorf("%w: from-host %q is not a host name", ErrInvalid, r.FromHost)
	}
	return nil
}

// RecoverHost is one host of the copy: its units' newest points.
type RecoverHost struct {
	Host   string             `json:"host"`
	Points []repository.Point `json:"points"` // one per unit, by unit
}

// RecoveredUnit is what became of one unit.
type RecoveredUnit struct {
	Unit      string    `json:"unit"`
	Point     string    `json:"point"`
	PointTime time.Time `json:"point_time"`
	// Status is restored, failed or skipped (with Skipped saying why).
	Status     string   `json:"status"`
	Error      string   `json:"error,omitempty"`
	Skipped    string   `json:"skipped,omitempty"`
	Containers []string `json:"containers,omitempty"`
	Volumes    []string `json:"volumes,omitempty"`
	Images     []string `json:"images_loaded,omitempty"`
	// ImagesMS is the time to load the point's images, RestoreMS that of
	// its data and of starting its containers (healthy, where they have
	// a healthcheck); RunningMS is from recover's start to this unit's
	// containers running.
	ImagesMS  int64 `json:"images_ms"`
	RestoreMS int64 `json:"restore_ms"`
	RunningMS int64 `json:"running_ms"`
}

// RecoverResult is a recovery, or with List the listing of the copy.
type RecoverResult struct {
	From  string          `json:"from"`
	Host  string          `json:"host,omitempty"`
	Hosts []RecoverHost   `json:"hosts,omitempty"`
	State *StateRestore   `json:"state,omitempty"`
	Units []RecoveredUnit `json:"units,omitempty"`
	// Restored and Failed count units; ToRunningMS is from the start to
	// the last restored container running.
	Restored    int   `json:"restored"`
	Failed      int   `json:"failed"`
	ToRunningMS int64 `json:"to_running_ms"`
}

// Recover lists what the copy holds and, unless asked only for that,
// restores lifeboat's state into env.StateDir and then each unit through
// Restore. A unit that fails is reported and the others go on; the error
// then says some failed (backup.ErrPartial when others came back).
func Recover(ctx context.Context, env *Env, req RecoverRequest, obs Observer) (RecoverResult, error) {
	start := time.Now()
	res := RecoverResult{From: req.From}
	if err := req.Validate(); err != nil {
		return res, err
	}
	repo, err := env.Repository(ctx, false)
	if err != nil {
		return res, err
	}
	points, err := repo.List(ctx, "")
	if err != nil {
		return res, err
	}
	res.Hosts = newestByHost(points)
	if req.List {
		return res, nil
	}
	host, err := pickHost(res.Hosts, req.FromHost, req.From)
	if err != nil {
		return res, err
	}
	res.Host = host.Host
	chosen, state, err := chooseUnits(host, req.Units)
	if err != nil {
		return res, err
	}
	if !req.NoState {
		res.State = &StateRestore{Skipped: "the copy holds no " + StateUnit + " point of " + host.Host}
		if state != nil {
			s, err := restoreState(ctx, repo, *state, env.StateDir)
			res.State = &s
			if err != nil {
				return res, fmt.Errorf("recover %s: %w", StateUnit, err)
			}
		}
	}
	res.Units = recoverUnits(ctx, env, repo, chosen, obs, start)
	res.ToRunningMS = time.Since(start).Milliseconds()
	var failed []string
	for _, u := range res.Units {
		switch u.Status {
		case "restored":
			res.Restored++
		case "failed":
			res.Failed++
			failed = append(failed, u.Unit)
		}
	}
	// Each unit's error is in the result, which every front end shows:
	// the error only names the units.
	switch {
	case res.Failed > 0 && res.Restored > 0:
		return res, fmt.Errorf("%w: %d of %d units not recovered: %s", backup.ErrPartial, res.Failed, res.Failed+res.Restored, strings.Join(failed, ", "))
	case res.Failed > 0:
		return res, fmt.Errorf("%w: %s", errNoneRecovered, strings.Join(failed, ", "))
	}
	return res, nil
}

// errNoneRecovered says that every unit recover tried failed.
var errNoneRecovered = errors.New("no unit recovered")

// newestByHost is each host's units with their newest point.
func newestByHost(points []repository.Point) []RecoverHost {
	newest := map[string]map[string]repository.Point{}
	for _, p := range points {
		if newest[p.Host] == nil {
			newest[p.Host] = map[string]repository.Point{}
		}
		if q, ok := newest[p.Host][p.Unit]; !ok || p.Time.After(q.Time) {
			newest[p.Host][p.Unit] = p
		}
	}
	var out []RecoverHost
	for h, units := range newest {
		rh := RecoverHost{Host: h}
		for _, p := range units {
			rh.Points = append(rh.Points, p)
		}
		sort.Slice(rh.Points, func(i, j int) bool { return rh.Points[i].Unit < rh.Points[j].Unit })
		out = append(out, rh)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	return out
}

func pickHost(hosts []RecoverHost, want, from string) (RecoverHost, error) {
	names := make([]string, 0, len(hosts))
	for _, h := range hosts {
		if h.Host == want || (want == "" && len(hosts) == 1) {
			return h, nil
		}
		names = append(names, h.Host)
	}
	switch {
	case len(hosts) == 0:
		return RecoverHost{}, fmt.Errorf("%w: %s holds no restore points", repository.ErrNoSuchPoint, from)
	case want == "":
		return RecoverHost{}, fmt.Errorf("%w: the copy holds points of several hosts (%s): name one with --from-host", ErrInvalid, strings.Join(names, ", "))
	}
	return RecoverHost{}, fmt.Errorf("%w: the copy holds no points of host %q, only of %s: see `recover --list`", ErrInvalid, want, strings.Join(names, ", "))
}

// chooseUnits picks the named units' newest points, or every unit's, and
// the state unit's apart.
func chooseUnits(h RecoverHost, names []string) (units []repository.Point, state *repository.Point, err error) {
	byUnit := map[string]repository.Point{}
	for _, p := range h.Points {
		if p.Unit == StateUnit {
			state = &p
			continue
		}
		byUnit[p.Unit] = p
		if len(names) == 0 {
			units = append(units, p)
		}
	}
	for _, n := range names {
		p, ok := byUnit[n]
		if !ok {
			return nil, nil, fmt.Errorf("%w: the copy holds no unit %s of host %s: see `recover --list`", ErrInvalid, n, h.Host)
		}
		units = append(units, p)
	}
	return units, state, nil
}
