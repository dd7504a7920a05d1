package engine

import (
	"context"
	"os"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/slipway/slipway"
)

// DefaultKeepBuilds is how many of an app's newest succeeded builds keep
// their slugs besides those releases use.
const DefaultKeepBuilds = 10

// SlugStore is what garbage collection of slugs needs of the store.
type SlugStore interface {
	// CollectableSlugs lists the app's slugs that no release uses and
	// that are not of its newest keep succeeded builds.
	CollectableSlugs(ctx context.Context, appID string, keep int) ([]string, error)
	// DeleteSlug deletes a slug's record, after checking again, under a
	// lock that creating a release of the slug takes too, that no release
	// uses it (EConflict then).
	DeleteSlug(ctx context.Context, id string) error
	// UnusedSlugs returns those of ids (folders of the slug dir) that no
	// slug record, unfinished build or release refers to, nor ever will.
	UnusedSlugs(ctx context.Context, ids []string) ([]string, error)
}

// collectSlugs deletes the app's slugs that no release uses, but those of
// its newest KeepBuilds builds: the record first, then the folder, so a
// slug the store still lists always has its files. It runs after each
// succeeded build of the app.
func (e *Engine) collectSlugs(ctx context.Context, appID string) {
	if e.cfg.Slugs == nil {
		return
	}
	ids, err := e.cfg.Slugs.CollectableSlugs(ctx, appID, e.cfg.KeepBuilds)
	if err != nil {
		e.log.Error("slug gc", "app", appID, "err", err)
		return
	}
	for _, id := range ids {
		err := e.cfg.Slugs.DeleteSlug(ctx, id)
		switch slipway.ErrorCode(err) {
		case "", slipway.ENotFound:
			e.removeSlugDir(id)
		case slipway.EConflict: // released meanwhile: kept
		default:
			e.log.Error("slug gc", "app", appID, "slug", id, "err", err)
		}
	}
	if len(ids) > 0 {
		e.log.Info("slug gc: removed old slugs", "app", appID, "count", len(ids))
	}
}

// sweepSlugDir removes the folders of the slug dir that nothing refers to:
// slugs of deleted apps, builds that failed or were cut off by a crash. It
// runs at start and after an app is deleted. Folders of builds running on
// any server, of slugs and of releases are kept, and narrowed to 0700 where
// others may read them (slugs stored before builds made them 0700).
func (e *Engine) sweepSlugDir(ctx context.Context) {
	if e.cfg.Slugs == nil || e.cfg.SlugDir == "" {
		return
	}
	entries, err := os.ReadDir(e.cfg.SlugDir)
	if err != nil {
		if !os.IsNotExist(err) {
			e.log.Error("slug sweep", "err", err)
		}
		return
	}
	var ids []string
	for _, d := range entries {
		if _, err := uuid.Parse(d.Name()); err == nil && len(d.Name()) == 36 {
			ids = append(ids, d.Name())
		}
	}
	unused, err := e.cfg.Slugs.UnusedSlugs(ctx, ids)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("slug sweep", "err", err)
		}
		return
	}
	gone := make(map[string]bool, len(unused))
	for _, id := range unused {
		e.removeSlugDir(id)
		gone[id] = true
	}
	if len(unused) > 0 {
		e.log.Info("slug sweep: removed unused slug folders", "count", len(unused))
	}
	for _, id := range ids {
		if !gone[id] {
			e.narrowSlugDir(id)
		}
	}
}

// narrowSlugDir makes the folder of slug id (a UUID) the server's alone,
// mode 0700, if it is a folder that others may read or enter.
func (e *Engine) narrowSlugDir(id string) {
	p := filepath.Join(e.cfg.SlugDir, id)
	fi, err := os.Lstat(p)
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o077 == 0 {
		return
	}
	if err := os.Chmod(p, 0o700); err != nil {
		e.log.Error("slug sweep: narrowing a slug folder to 0700", "slug", id, "err", err)
	}
}

// removeSlugDir removes the folder of a build, named by its id (a UUID,
// so nothing outside the slug dir), from the slug dir.
func (e *Engine) removeSlugDir(id string) {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 || e.cfg.SlugDir == "" {
		return
	}
	if err := os.RemoveAll(filepath.Join(e.cfg.SlugDir, id)); err != nil {
		e.log.Error("slug gc", "slug", id, "err", err)
	}
}

// goSweepSlugDir sweeps the slug dir in the background.
func (e *Engine) goSweepSlugDir() {
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		<-e.ready
		e.sweepSlugDir(e.ctx)
	}()
}
