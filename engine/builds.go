package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/slipway/slipway"
)

// StartBuild runs a queued build in the background: fetch, verify, unpack,
// then, when the app has auto-release on, release it. At most
// MaxConcurrentBuilds run at once; the others stay queued until one ends.
// The build owns src.File and removes it when it ends. It works on a copy
// of b: the caller may go on reading b (the API answers with it) while
// the build updates its own.
func (e *Engine) StartBuild(b *slipway.Build, src slipway.BuildSource) {
	own := *b
	b = &own
	e.mu.Lock()
	ctx, cancel := context.WithCancel(context.Background())
	e.builds[b.ID] = cancel
	e.wg.Add(1)
	e.mu.Unlock()
	go func() {
		defer e.wg.Done()
		defer func() {
			e.mu.Lock()
			delete(e.builds, b.ID)
			e.mu.Unlock()
			cancel()
			if src.File != "" {
				os.Remove(src.File)
			}
		}()
		<-e.ready
		stop := context.AfterFunc(e.ctx, cancel)
		defer stop()
		// It may wait for a slot a while: say it is this server's, so
		// another server's recovery does not take it for one left behind.
		if err := e.cfg.Store.HoldBuild(context.WithoutCancel(ctx), b.ID, e.cfg.Holder); err != nil && slipway.ErrorCode(err) != slipway.EConflict {
			e.log.Error("hold build", "build", b.ID, "err", err)
		}
		if !e.buildSlot(ctx, b) {
			e.build(ctx, b, src) // stopped while queued: fails it
			return
		}
		defer func() { <-e.buildSlots }()
		e.build(ctx, b, src)
	}()
}

// buildSlot waits for one of the MaxConcurrentBuilds slots, saying so in
// the build's lines when it has to; false when ctx ended first.
func (e *Engine) buildSlot(ctx context.Context, b *slipway.Build) bool {
	select {
	case e.buildSlots <- struct{}{}:
		return true
	default:
	}
	line := fmt.Sprintf("Queued: %d builds are running on this server; this one starts when one of them ends.", cap(e.buildSlots))
	if err := e.cfg.Store.AppendBuildLines(context.WithoutCancel(ctx), b.ID, line); err != nil {
		e.log.Error("build log", "build", b.ID, "err", err)
	}
	select {
	case e.buildSlots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// CancelBuild stops a running build; EConflict if it is not running here.
func (e *Engine) CancelBuild(ctx context.Context, b *slipway.Build) error {
	e.mu.Lock()
	cancel := e.builds[b.ID]
	e.mu.Unlock()
	if cancel == nil {
		return slipway.Errorf(slipway.EConflict, "Build %s is %s, not running; there is nothing to stop.", b.ID, b.Status)
	}
	cancel()
	return nil
}

func (e *Engine) build(ctx context.Context, b *slipway.Build, src slipway.BuildSource) {
	st := e.cfg.Store
	bg := context.WithoutCancel(ctx)
	if ctx.Err() != nil { // stopped before it started
		if err := st.FinishBuild(bg, b.ID, finished(slipway.BuildResult{Status: slipway.BuildFailed, Lines: []string{"Build stopped before it started."}})); err != nil {
			e.log.Error("finish build", "build", b.ID, "err", err)
		}
		e.buildFinished(b, slipway.BuildFailed)
		return
	}
	if err := st.StartBuild(bg, b.ID, e.cfg.Holder); err != nil {
		e.log.Error("start build", "build", b.ID, "err", err)
		return
	}
	dir := filepath.Join(e.cfg.SlugDir, b.ID)
	logf := func(format string, args ...any) {
		if err := st.AppendBuildLines(bg, b.ID, fmt.Sprintf(format, args...)); err != nil {
			e.log.Error("build log", "build", b.ID, "err", err)
		}
	}
	slug, err := e.cfg.Builder.Build(ctx, src, dir, logf)
	if err != nil {
		os.RemoveAll(dir)
		msg := "Build failed: " + slipway.ErrorMessage(err)
		if ctx.Err() != nil {
			msg = "Build stopped before it finished."
		} else if slipway.ErrorCode(err) == slipway.EInternal {
			e.log.Error("build", "build", b.ID, "err", err)
		}
		if err := st.FinishBuild(bg, b.ID, finished(slipway.BuildResult{Status: slipway.BuildFailed, Lines: []string{msg}})); err != nil {
			e.log.Error("finish build", "build", b.ID, "err", err)
		}
		e.buildFinished(b, slipway.BuildFailed)
		return
	}
	if err := st.FinishBuild(bg, b.ID, finished(slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: slug, Lines: []string{"Build succeeded: slug " + b.ID}})); err != nil {
		e.log.Error("finish build", "build", b.ID, "err", err)
		return
	}
	e.buildFinished(b, slipway.BuildSucceeded)
	defer e.collectSlugs(bg, b.AppID)
	app, err := st.FindApp(bg, b.AppID)
	if err != nil || !app.AutoRelease {
		return
	}
	r, err := st.CreateRelease(bg, slipway.NewRelease{AppID: app.ID, SlugID: b.ID, Trigger: slipway.TriggerAutoRelease,
		Description: "Auto-Deploy " + b.ID[:8], UserID: b.UserID, UserEmail: b.UserEmail})
	if err != nil {
		logf("Auto-release skipped: %s", slipway.ErrorMessage(err))
		return
	}
	logf("Auto-release: v%d queued", r.Version)
	e.Kick(app.ID)
}

func (e *Engine) buildFinished(b *slipway.Build, status string) {
	b.Status = status
	if e.cfg.Events != nil {
		e.cfg.Events.BuildFinished(b, status)
	}
}

// finished ends r's lines with the line Akkeris clients wait for.
func finished(r slipway.BuildResult) slipway.BuildResult {
	r.Lines = append(r.Lines, slipway.FinishedLine(r.Status))
	return r
}
