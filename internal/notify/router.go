package notify

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nicholas-fedor/shoutrrr/pkg/router"
	"github.com/nicholas-fedor/shoutrrr/pkg/types"
)

// Target is one named destination: any shoutrrr URL (smtp://, slack://,
// discord://, matrix://, telegram://, ntfy://, gotify://, generic://…)
// and the event classes it gets (DefaultClasses when none).
type Target struct {
	Name   string
	URL    string
	Events []string
}

// None, as a unit's route, turns its notifications off.
const None = "none"

// Router sends events to targets through shoutrrr: to a unit's routes
// (its lifeboat.notify label) when it has some, else to the defaults.
type Router struct {
	targets  map[string]*sender
	defaults []string
}

type sender struct {
	Target
	svc *router.ServiceRouter
}

// NewRouter checks the targets and makes their senders. defaults are the
// routes of a unit without a label; nil means every target.
func NewRouter(targets []Target, defaults []string) (*Router, error) {
	r := &Router{targets: map[string]*sender{}}
	var errs []error
	for i, t := range targets {
		if err := checkTarget(t); err != nil {
			errs = append(errs, fmt.Errorf("notify.targets[%d]: %w", i, err))
			continue
		}
		if r.targets[t.Name] != nil {
			errs = append(errs, fmt.Errorf("notify.targets[%d]: name %q used twice: give each target its own", i, t.Name))
			continue
		}
		svc, err := router.New(nil, t.URL)
		if err != nil {
			errs = append(errs, fmt.Errorf("notify.targets[%d] %s (%s): %w: check it against shoutrrr's documentation of the service", i, t.Name, Shown(t.URL), scrub(err, t.URL)))
			continue
		}
		svc.Timeout = 15 * time.Second
		r.targets[t.Name] = &sender{Target: t, svc: svc}
		if defaults == nil {
			r.defaults = append(r.defaults, t.Name)
		}
	}
	for _, d := range defaults {
		if !slices.ContainsFunc(targets, func(t Target) bool { return t.Name == d }) {
			errs = append(errs, fmt.Errorf("notify.default names %q, which is no target: use one of %s", d, strings.Join(r.Names(), ", ")))
		}
		r.defaults = append(r.defaults, d)
	}
	return r, errors.Join(errs...)
}

func checkTarget(t Target) error {
	if t.Name == "" || strings.ContainsAny(t.Name, ", \t") || t.Name == None {
		return fmt.Errorf("name %q: a word without commas or spaces (and not %q), used by the lifeboat.notify label", t.Name, None)
	}
	if !strings.Contains(t.URL, "://") {
		return fmt.Errorf("%s: url: a shoutrrr URL such as ntfy://ntfy.sh/TOPIC or smtp://HOST:PORT/?from=…&to=…", t.Name)
	}
	if err := CheckClasses(t.Events); err != nil {
		return fmt.Errorf("%s: events: %w", t.Name, err)
	}
	return nil
}

// Names are the targets' names, sorted.
func (r *Router) Names() []string {
	var out []string
	for n := range r.targets {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Has says whether name is a target.
func (r *Router) Has(name string) bool { return r.targets[name] != nil }

// Empty says whether there is nothing to send to.
func (r *Router) Empty() bool { return r == nil || len(r.targets) == 0 }

// pick are the targets of ev for a unit with routes (nil: the defaults),
// those whose events include ev's class.
func (r *Router) pick(ev Event, routes []string) []*sender {
	if routes == nil {
		routes = r.defaults
	}
	var out []*sender
	for _, name := range routes {
		s := r.targets[name]
		if s != nil && wants(s.Events, ev) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Send delivers ev to its targets, each at most once (shoutrrr retries
// nothing, and a chat message twice is worse than once missed). Errors
// name the target, never its URL's secrets.
func (r *Router) Send(ev Event, routes []string) error {
	var errs []error
	for _, s := range r.pick(ev, routes) {
		params := types.Params{"title": ev.Title()}
		for _, err := range s.svc.Send(ev.Message(), &params) {
			if err != nil {
				errs = append(errs, fmt.Errorf("notify %s (%s): %w", s.Name, Shown(s.URL), scrub(err, s.URL)))
			}
		}
	}
	return errors.Join(errs...)
}
