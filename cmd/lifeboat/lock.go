package main

import (
	"encoding/json"
	"path/filepath"

	"github.com/lifeboat-backup/lifeboat/internal/unitlock"
)

// lockDir holds the per-unit locks that keep two jobs of one unit apart.
func (g *globalOptions) lockDir() string { return filepath.Join(g.stateDir, "locks") }

// waitNotice says on stderr that a job waits for a unit's lock, and for
// whom: a JSON status line with --json, nothing with -q. println draws
// around a progress line when one is shown.
func (g *globalOptions) waitNotice(println func(string)) func(unitlock.Holder) {
	return func(h unitlock.Holder) {
		switch {
		case g.quiet:
		case g.json:
			b, _ := json.Marshal(struct {
				MessageType string          `json:"message_type"`
				Action      string          `json:"action"`
				Holder      unitlock.Holder `json:"holder"`
			}{"status", "waiting", h})
			println(string(b))
		default:
			println("lifeboat: waiting for " + h.String() + "… (--no-wait refuses instead)")
		}
	}
}
