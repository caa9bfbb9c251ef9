package backup

import (
	"fmt"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/consistency"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// decision is how one unit is captured: a mode for its files, and whether
// its databases are dumped too.
type decision struct {
	files string // none, pause, stop or snapshot
	dump  bool
	why   string
}

// String is the mode as restore points record it: "pause", "dump",
// "dump+pause", ...
func (d decision) String() string {
	switch {
	case !d.dump:
		return d.files
	case d.files == ModeNone:
		return ModeDump
	}
	return ModeDump + "+" + d.files
}

// decide applies the flag over the label and takes the first alternative
// of a list ("snapshot,pause") that can apply. snapshotBlocked says why the
// unit's storage cannot be snapshotted ("" when it can). source names
// where the label came from, for the reason shown by `lifeboat ls`.
func decide(flagMode, labelMode, source string, cs []engine.Container, snapshotBlocked func() string) (decision, error) {
	mode := labelMode
	if flagMode != "" && flagMode != ModeAuto {
		mode, source = flagMode, "--consistency"
	}
	var running bool
	var dbs []string
	for _, c := range cs {
		running = running || c.Running()
		if p, why := consistency.Detect(c.Image, c.Labels); p != "" && c.Running() {
			dbs = append(dbs, fmt.Sprintf("%s is %s (%s)", c.Name, p, why))
		}
	}
	var skipped []string
	alts := strings.Split(mode, ",")
	for i, alt := range alts {
		alt = strings.TrimSpace(alt)
		if alt == ModeAuto {
			switch {
			case !running:
				return decision{files: ModeNone, why: "auto: no container is running, nothing changes under the copy"}, nil
			case len(dbs) > 0:
				return decision{files: ModePause, dump: true, why: "auto: " + strings.Join(dbs, ", ") + ": dumped through exec, and the files are captured paused as a second line of defence"}, nil
			}
			return decision{files: ModePause, why: "auto: running containers are paused for a crash-consistent point"}, nil
		}
		d := decision{files: ModeNone}
		for _, part := range strings.Split(alt, "+") {
			switch part {
			case ModeDump:
				d.dump = true
			case ModeNone, ModePause, ModeStop, ModeSnapshot:
				d.files = part
			default:
				return decision{}, fmt.Errorf("consistency %q is not known: use auto, none, pause, stop, snapshot, dump or dump+pause", alt)
			}
		}
		if d.files == ModeSnapshot {
			if why := snapshotBlocked(); why != "" {
				skipped = append(skipped, "snapshot: "+why)
				if i == len(alts)-1 {
					return decision{}, fmt.Errorf("consistency %s from %s: the storage cannot be snapshotted: %s; allow a fallback with --consistency snapshot,pause (or the label %s)", mode, source, why, "lifeboat.consistency=snapshot,pause")
				}
				continue
			}
		}
		d.why = fmt.Sprintf("%s from %s", mode, source)
		if len(skipped) > 0 {
			d.why += "; not " + strings.Join(skipped, "; not ")
		}
		if !running && (d.files == ModePause || d.files == ModeStop) {
			// Nothing to pause or stop: a point labelled so would claim
			// a freeze that never happened. Read as it is, as auto does.
			d.why += "; no container is running: nothing to " + d.files + ", read as it is"
			d.files = ModeNone
		}
		return d, nil
	}
	return decision{}, fmt.Errorf("consistency %q: no mode applies", mode)
}
