// Package layout is the tree of a restore point: where each piece lives and
// the manifest (/lifeboat.json) that describes it. Backup writes it, restore
// and listings read it; both depend on this package and not on each other.
package layout

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
)

// FormatVersion is the version of this layout. Restore refuses newer ones.
const FormatVersion = 1

// Paths inside a restore point, slash-separated and relative to its root.
const (
	ManifestPath  = "lifeboat.json"
	VolumesDir    = "volumes"
	BindsDir      = "binds"
	ContainersDir = "containers"
	MetaDir       = "meta" // sidecars: what the repository format does not keep
	ConfigFile    = "config.json"
	ImageFile     = "image.json"
	LayerDir      = "layer"
	ImagesDir     = "images"
	DumpsDir      = "dumps"
	ComposeDir    = "compose" // a Compose project's files, by host path
)

// ImagePath is where a `docker save` archive of an image is.
func ImagePath(id string) string { return ImagesDir + "/" + strings.TrimPrefix(id, "sha256:") + ".tar" }

// VolumePath is where a named volume's files are.
func VolumePath(name string) string { return VolumesDir + "/" + name }

// VolumeMetaPath is where the sidecar of a named volume is.
func VolumeMetaPath(name string) string { return MetaPath(VolumePath(name)) }

// BindPath is where a bind mount's files are, by host path.
func BindPath(hostPath string) string { return BindsDir + "/" + EscapePath(hostPath) }

// ContainerPath is the directory of one container's config, image and layer.
func ContainerPath(name string) string { return ContainersDir + "/" + name }

// LayerPath is where a container's writable layer is.
func LayerPath(name string) string { return ContainerPath(name) + "/" + LayerDir }

// MetaPath is where the sidecar of the tree at dataPath is.
func MetaPath(dataPath string) string { return MetaDir + "/" + dataPath + ".json" }

// EscapePath turns a host path into one directory name, reversibly:
// "/srv/app data" becomes "srv%2Fapp%20data". The host's root, which
// would otherwise be an empty name, is "%2F".
func EscapePath(p string) string {
	if strings.Trim(p, "/") == "" {
		return "%2F"
	}
	return url.PathEscape(strings.TrimPrefix(p, "/"))
}

// UnescapePath reverses EscapePath.
func UnescapePath(name string) (string, error) {
	p, err := url.PathUnescape(name)
	if err != nil {
		return "", fmt.Errorf("bind directory %q: %w", name, err)
	}
	return path.Clean("/" + p), nil
}

// Manifest is /lifeboat.json.
type Manifest struct {
	FormatVersion int                  `json:"format_version"`
	Lifeboat      string               `json:"lifeboat_version"`
	Host          string               `json:"host"`
	Engine        engine.Info          `json:"engine"`
	Unit          string               `json:"unit"`
	Kind          string               `json:"kind"`
	Time          time.Time            `json:"time"`
	Consistency   string               `json:"consistency"`
	DowntimeMS    int64                `json:"downtime_ms"`
	Project       string               `json:"project,omitempty"`
	Exclude       []string             `json:"exclude,omitempty"` // lifeboat.exclude patterns applied to volumes and binds
	Containers    []Container          `json:"containers,omitempty"`
	Volumes       []Volume             `json:"volumes,omitempty"`
	Binds         []Bind               `json:"binds,omitempty"`
	Networks      []engine.NetworkSpec `json:"networks,omitempty"`
	Images        []Image              `json:"images,omitempty"`
	Dumps         []Dump               `json:"dumps,omitempty"`
	Compose       *Compose             `json:"compose,omitempty"`
}

// ComposeFilePath is where a Compose project's file is, by host path.
func ComposeFilePath(hostPath string) string { return ComposeDir + "/" + EscapePath(hostPath) }

// Compose is a Compose project's files as its containers' labels name
// them (com.docker.compose.project.working_dir and config_files), with the
// project's .env, so that `docker compose` works on the project after a
// restore onto a host that lacks them.
type Compose struct {
	WorkingDir  string        `json:"working_dir"`
	ConfigFiles []string      `json:"config_files"` // absolute, in the labels' order
	Files       []ComposeFile `json:"files,omitempty"`
	// NotKept says why a file the labels name is not in the point.
	NotKept []string `json:"not_kept,omitempty"`
}

// ComposeFile is one file of a Compose project.
type ComposeFile struct {
	Source string `json:"source"` // absolute host path
	Path   string `json:"path"`   // in the point
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"` // restore compares an existing file by it
	Mode   uint32 `json:"mode"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
}

// Data is one tree of files in a restore point and its sidecar.
type Data struct {
	Path    string           `json:"path"`
	Meta    string           `json:"meta"`
	Files   int64            `json:"files"`
	Dirs    int64            `json:"dirs"`
	Bytes   int64            `json:"bytes"`
	NotKept []fsmeta.NotKept `json:"not_kept,omitempty"`
}

// Volume is one named volume in a restore point.
type Volume struct {
	engine.Volume
	Data
}

// Bind is one bind-mounted host path, stored once however many containers
// mount it.
type Bind struct {
	Source string `json:"source"`
	Data
}

// Dump is one container's logical dumps, under dumps/<container>/.
type Dump struct {
	Container string   `json:"container"`
	Profile   string   `json:"profile"`
	Reason    string   `json:"reason"`
	Files     []string `json:"files"`
	// Sources maps a file to what it holds: the path in the container it
	// copies (SQLite), or the name of its database.
	Sources map[string]string `json:"sources,omitempty"`
}

// Image is one image the unit's containers run, and whether the restore
// point holds it as a `docker save` archive.
type Image struct {
	engine.ImageRef
	Saved  bool   `json:"saved"`
	Path   string `json:"path,omitempty"`   // the archive, when saved
	Pushed string `json:"pushed,omitempty"` // REGISTRY/repo:tag it was pushed to (--images push)
	Reason string `json:"reason,omitempty"` // why it was or was not saved
}

// Container is one container's summary; its full configuration is
// containers/<name>/config.json.
type Container struct {
	Name      string          `json:"name"`
	Service   string          `json:"service,omitempty"`
	Image     engine.ImageRef `json:"image"`
	Running   bool            `json:"running"`
	DependsOn []string        `json:"depends_on,omitempty"`
	Order     int             `json:"order"`           // start order
	Layer     *Data           `json:"layer,omitempty"` // nil when the storage driver is not overlay2
	// Timeline is the image committed from the container for this point
	// (--images commit): lifeboat/<unit>/<container>:<UTC time>.
	Timeline *engine.ImageRef `json:"timeline,omitempty"`
	// TimelinePushed is the timeline image in a registry (--images
	// commit,push): REGISTRY/lifeboat/<unit>/<container>:<UTC time>.
	TimelinePushed string `json:"timeline_pushed,omitempty"`
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

// FindContainer returns the container named name.
func (m *Manifest) FindContainer(name string) (*Container, error) {
	for i := range m.Containers {
		if m.Containers[i].Name == name {
			return &m.Containers[i], nil
		}
	}
	return nil, fmt.Errorf("container %q is not in this restore point of %s", name, m.Unit)
}
