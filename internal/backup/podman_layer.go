package backup

import (
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/beneath"
	"github.com/lifeboat-backup/lifeboat/internal/engine"
)

// podmanPlaceholders are files Podman creates in a container's writable
// layer as targets of its own bind mounts (Docker makes them in a layer
// below). Restored as files on another engine they would lie: an empty
// /run/.containerenv tells tools they run under Podman.
var podmanPlaceholders = []string{"run/.containerenv", "etc/hosts", "etc/hostname", "etc/resolv.conf"}

// layerSkip leaves out of a writable layer the FIFO a dump of the same
// backup may have made in the container's /tmp (see engine.IsDumpFIFO),
// and Podman's placeholders.
func layerSkip(eng *engine.Client, layerDir string) func(string, bool) bool {
	podman := podmanSkip(eng, layerDir)
	return func(rel string, isDir bool) bool {
		if name, ok := strings.CutPrefix(rel, "tmp/"); ok && !isDir && engine.IsDumpFIFO(name) {
			return true
		}
		return podman != nil && podman(rel, isDir)
	}
}

// podmanSkip leaves Podman's placeholders out of a writable layer: those
// that are empty regular files, so that an /etc/hosts a container wrote
// itself (under --no-hosts, where nothing is mounted over it) is kept.
// They are looked at beneath the layer's root, never through a symlink
// the container made. nil on any other engine.
func podmanSkip(eng *engine.Client, layerDir string) func(string, bool) bool {
	if !eng.Info().Podman {
		return nil
	}
	root, err := beneath.Open(layerDir)
	if err != nil {
		return nil
	}
	defer root.Close()
	skip := map[string]bool{}
	for _, rel := range podmanPlaceholders {
		dir, name, err := root.Parent(rel)
		if err != nil {
			continue
		}
		st, err := beneath.Lstat(dir, name)
		dir.Close()
		if err == nil && st.Mode&0o170000 == 0o100000 && st.Size == 0 {
			skip[rel] = true
		}
	}
	if len(skip) == 0 {
		return nil
	}
	return func(rel string, isDir bool) bool { return !isDir && skip[rel] }
}
