package repository

import "os"

// heldFile is a descriptor that a cache shares between concurrent users
// (kept pack files, open directories of a restore): dropped from its
// cache while in use, it is closed by its last user. Its owner's mutex
// guards it.
type heldFile struct {
	f       *os.File
	users   int
	dropped bool
}

// unuse ends one use.
func (h *heldFile) unuse() {
	h.users--
	h.closeIfDone()
}

// drop says the cache no longer keeps it.
func (h *heldFile) drop() {
	h.dropped = true
	h.closeIfDone()
}

func (h *heldFile) closeIfDone() {
	if h.dropped && h.users == 0 {
		h.f.Close()
	}
}
