package backup

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/lifeboat-backup/lifeboat/internal/engine"
	"github.com/lifeboat-backup/lifeboat/internal/fsmeta"
	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/progress"
	"github.com/lifeboat-backup/lifeboat/internal/repository"
	"github.com/lifeboat-backup/lifeboat/internal/source"
)

func backupVolume(ctx context.Context, repo *repository.Repository, eng *engine.Client, u Unit, opts Options) Result {
	res := Result{}
	counters := progress.New()
	if opts.OnStart != nil {
		opts.OnStart(u.String(), counters)
	}
	if m := opts.Consistency; m != "" && m != ModeAuto && m != ModeNone {
		res.Err = fmt.Errorf("%s: a volume unit is read as it is (consistency none); for %s, back up the container or project that uses it", u, m)
		return res
	}
	vol, err := eng.Volume(ctx, u.Name)
	if err != nil {
		res.Err = err
		return res
	}
	if err := checkReadable(eng, vol); err != nil {
		res.Err = err
		return res
	}
	trigger := opts.Trigger
	if trigger == "" {
		trigger = "manual"
	}
	var item layout.Volume
	point, err := repo.Snapshot(ctx, repository.SnapshotOptions{
		Unit: u.String(), Kind: u.Kind, Trigger: trigger, Progress: counters,
	}, func(ctx context.Context, up repository.Uploader) (repository.Labels, error) {
		root, it, err := volumeTree(ctx, eng, vol, counters, opts)
		if err != nil {
			return repository.Labels{}, err
		}
		item = it
		if err := up.Upload(ctx, root); err != nil {
			return repository.Labels{}, err
		}
		return repository.Labels{Consistency: ModeNone}, nil
	})
	if err != nil {
		res.Err = err
		return res
	}
	res.Point = point
	res.AddedBytes = counters.StoredBytes.Load()
	res.Unchanged = counters.CachedBytes.Load()
	for _, nk := range item.NotKept {
		res.NotKept = append(res.NotKept, layout.VolumePath(vol.Name)+"/"+string(nk.Path)+": "+nk.Reason)
	}
	opts.Log.Info("restore point saved", "unit", u.String(), "id", point.ID, "files", point.Files, "bytes", point.Bytes, "bytes_added", res.AddedBytes)
	return res
}

// checkReadable makes sure the volume's files are reachable from here: the
// local fast path reads the mount point directly.
func checkReadable(eng *engine.Client, vol engine.Volume) error {
	if !eng.IsLocal() {
		return fmt.Errorf("volume %q: the engine at %s is remote; reading volumes through the Engine API is not supported yet: run lifeboat on that host", vol.Name, eng.Host())
	}
	st, err := os.Stat(vol.Mountpoint)
	if err != nil {
		return fmt.Errorf("volume %q: read its mount point: %w (lifeboat reads volumes as root on the Docker host)", vol.Name, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("volume %q: mount point %s is not a directory", vol.Name, vol.Mountpoint)
	}
	return nil
}

// volumeTree scans the volume for what kopia does not keep and builds the
// restore point's tree around it.
func volumeTree(ctx context.Context, eng *engine.Client, vol engine.Volume, c *progress.Counters, opts Options) (source.Entry, layout.Volume, error) {
	sc, stats, err := fsmeta.Scan(ctx, vol.Mountpoint, fsmeta.ScanOptions{})
	if err != nil {
		return nil, layout.Volume{}, fmt.Errorf("scan volume %q: %w", vol.Name, err)
	}
	c.TotalFiles.Store(stats.Files)
	c.TotalBytes.Store(stats.Bytes)
	meta, err := sc.Marshal()
	if err != nil {
		return nil, layout.Volume{}, err
	}
	item := layout.Volume{Volume: vol, Data: layout.Data{
		Path: layout.VolumePath(vol.Name), Meta: layout.VolumeMetaPath(vol.Name),
		Files: stats.Files, Dirs: stats.Dirs, Bytes: stats.Bytes, NotKept: sc.NotKept,
	}}
	now := time.Now().UTC()
	m := layout.Manifest{
		FormatVersion: layout.FormatVersion, Lifeboat: opts.Version, Host: eng.Info().Hostname,
		Engine: eng.Info(), Unit: "volume/" + vol.Name, Kind: "volume", Time: now,
		Consistency: ModeNone, Volumes: []layout.Volume{item},
	}
	mb, err := m.Marshal()
	if err != nil {
		return nil, layout.Volume{}, err
	}
	data, err := source.Local(vol.Mountpoint, vol.Name)
	if err != nil {
		return nil, layout.Volume{}, err
	}
	root := source.Dir("", now,
		source.Bytes(layout.ManifestPath, mb, 0o644, now),
		source.Dir(layout.VolumesDir, now, data),
		source.Dir(layout.MetaDir, now,
			source.Dir(layout.VolumesDir, now, source.Bytes(vol.Name+".json", meta, 0o644, now))),
	)
	return root, item, nil
}
