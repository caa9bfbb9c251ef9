// Package layout is the tree of a restore point: where each piece lives and
// the manifest (/lifeboat.json) that describes it. Backup writes it, restore
// and listings read it; both depend on this package and not on each other.
package layout

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
)

// FormatVersion is the version of this layout. Restore refuses newer ones.
const FormatVersion = 1

// Paths inside a restore point, slash-separated and relative to its root.
const (
	ManifestPath = "lifeboat.json"
	VolumesDir   = "volumes"
	MetaDir      = "meta" // sidecars: what the repository format does not keep
)

// VolumePath is where a named volume's files are.
func VolumePath(name string) string { return VolumesDir + "/" + name }

// VolumeMetaPath is where the sidecar of a named volume is.
func VolumeMetaPath(name string) string { return MetaDir + "/" + VolumesDir + "/" + name + ".json" }

// Manifest is /lifeboat.json.
type Manifest struct {
	FormatVersion int         `json:"format_version"`
	Lifeboat      string      `json:"lifeboat_version"`
	Host          string      `json:"host"`
	Engine        engine.Info `json:"engine"`
	Unit          string      `json:"unit"`
	Kind          string      `json:"kind"`
	Time          time.Time   `json:"time"`
	Consistency   string      `json:"consistency"`
	Volumes       []Volume    `json:"volumes,omitempty"`
}

// Volume is the summary of one named volume in a restore point.
type Volume struct {
	engine.Volume
	Path    string           `json:"path"`
	Meta    string           `json:"meta"`
	Files   int64            `json:"files"`
	Dirs    int64            `json:"dirs"`
	Bytes   int64            `json:"bytes"`
	NotKept []fsmeta.NotKept `json:"not_kept,omitempty"`
}

// Marshal encodes m for the restore point.
func (m *Manifest) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	return append(b, '\n'), nil
}

// ParseManifest decodes a restore point's manifest and refuses layouts newer
// than this build understands.
func ParseManifest(b []byte) (*Manifest, error) {
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode %s: %w", ManifestPath, err)
	}
	if m.FormatVersion > FormatVersion {
		return nil, fmt.Errorf("restore point format %d is newer than this lifeboat understands (%d): upgrade lifeboat", m.FormatVersion, FormatVersion)
	}
	return &m, nil
}

// FindVolume returns the volume named name, or the only volume when name is
// empty.
func (m *Manifest) FindVolume(name string) (*Volume, error) {
	if name == "" {
		if len(m.Volumes) == 1 {
			return &m.Volumes[0], nil
		}
		names := make([]string, 0, len(m.Volumes))
		for _, v := range m.Volumes {
			names = append(names, v.Name)
		}
		return nil, fmt.Errorf("restore point of %s holds volumes %v: name one with --volume", m.Unit, names)
	}
	for i := range m.Volumes {
		if m.Volumes[i].Name == name {
			return &m.Volumes[i], nil
		}
	}
	return nil, fmt.Errorf("volume %q is not in this restore point of %s", name, m.Unit)
}
