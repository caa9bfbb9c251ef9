package restore

import (
	"context"
	"fmt"
	"strings"

	"github.com/lifeboat-backup/lifeboat/internal/layout"
	"github.com/lifeboat-backup/lifeboat/internal/registry"
)

// pullImages pulls what the point pushed and the engine lacks, and gives
// pulled images the references their containers were made from.
func (u *unitRestore) pullImages(ctx context.Context) error {
	for _, ref := range u.pull {
		host, _, _, err := registry.Split(ref)
		if err != nil {
			return err
		}
		cred, err := registry.CredentialsFor(host)
		if err != nil {
			return err
		}
		if err := u.eng.Pull(ctx, ref, cred.EngineAuth(host)); err != nil {
			return err
		}
		u.res.Images = append(u.res.Images, ref)
	}
	for _, rt := range u.retag {
		if rt[1] != "" && !strings.HasPrefix(rt[1], "sha256:") {
			if err := u.eng.Tag(ctx, rt[0], rt[1]); err != nil {
				return err
			}
		}
	}
	return nil
}

// pushedImage is where the point pushed image id, or "".
func (u *unitRestore) pushedImage(id string) string {
	for _, img := range u.m.Images {
		if img.ID == id && img.Pushed != "" {
			return img.Pushed
		}
	}
	return ""
}

// savedImage is the point's archive of image id, or nil.
func (u *unitRestore) savedImage(id string) *layout.Image {
	for i := range u.m.Images {
		if img := &u.m.Images[i]; img.ID == id && img.Saved {
			return img
		}
	}
	return nil
}

// loadImages streams archives from the repository into the engine,
// without a copy on the local disk.
func (u *unitRestore) loadImages(ctx context.Context, imgs []layout.Image) error {
	for _, img := range imgs {
		rd, err := u.repo.OpenFile(ctx, u.point.ID, img.Path)
		if err != nil {
			return err
		}
		err = u.eng.LoadImage(ctx, rd)
		rd.Close()
		if err != nil {
			return fmt.Errorf("image %s: %w", img.ImageRef, err)
		}
		u.res.Images = append(u.res.Images, img.ImageRef.String())
	}
	return nil
}

// imagesOnly loads every image the point holds and pulls every image it
// pushed, tags included.
func (u *unitRestore) imagesOnly(ctx context.Context) error {
	var imgs []layout.Image
	for _, img := range u.m.Images {
		switch {
		case img.Saved:
			imgs = append(imgs, img)
		case img.Pushed != "":
			u.pull = append(u.pull, img.Pushed)
			u.retag = append(u.retag, [2]string{img.Pushed, img.Ref})
		}
	}
	for _, c := range u.m.Containers {
		if c.TimelinePushed != "" {
			u.pull = append(u.pull, c.TimelinePushed)
		}
	}
	if len(imgs) == 0 && len(u.pull) == 0 {
		return fmt.Errorf("restore point %s holds no images (back up with --images save or push to keep them)", u.point.ID)
	}
	if err := u.loadImages(ctx, imgs); err != nil {
		return err
	}
	return u.pullImages(ctx)
}
