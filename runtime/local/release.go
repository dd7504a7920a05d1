package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	slipway "github.com/slipway/slipway"
)

// releasePhase runs the slug's release command once, to completion, with the
// release's environment (DYNO=release.1, no PORT), before any dyno of d
// starts. Each output line becomes an info event. A non-zero exit, running
// past ReleasePhaseTimeout or ctx's end is an error and nothing else has
// changed.
func (r *Runtime) releasePhase(ctx context.Context, a *app, d *slipway.Desired, command string, rep *reporter) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("the release was cancelled before its release phase: %w", context.Cause(ctx))
	}
	const name = "release.1"
	rep.Emit(slipway.EventInfo, name, "release", "release phase: running %s", command)
	home := "/app"
	if r.iso == nil {
		home = d.Slug.Dir
	}
	env := dynoEnv(r.releaseEnv(d), 0, name, home)
	header := fmt.Sprintf("%s v%d (release %s) starting: %s", name, d.Release.Version, d.Release.ID, command)
	var tl tail
	onLine := func(line string) {
		tl.add(line)
		rep.Emit(slipway.EventInfo, name, "release", "%s: %s", name, line)
	}
	p, err := r.spawn(spawnSpec{appID: a.id, appKey: d.App.Key, logName: name, command: command, dir: d.Slug.Dir, env: env, header: header, onLine: onLine})
	if err != nil {
		return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "Release phase failed: the release command could not be started: %v", err),
			&slipway.Failure{Phase: slipway.FailReleasePhase, Dyno: name})
	}
	withLast := func(msg string) string {
		if last := tl.last(); last != "" {
			return msg + ": " + last
		}
		return msg + "."
	}
	t := time.NewTimer(r.cfg.ReleasePhaseTimeout)
	defer t.Stop()
	select {
	case <-p.exited:
		r.reap(p)
	case <-t.C:
		r.terminate(p)
		return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s", withLast(fmt.Sprintf("Release phase failed: the release command did not finish within %s and was stopped", fmtDur(r.cfg.ReleasePhaseTimeout)))),
			releaseFailure(p.failure(slipway.FailReleasePhase, name, tl.lines())))
	case <-ctx.Done():
		r.terminate(p)
		return fmt.Errorf("the release was cancelled during its release phase: %w", context.Cause(ctx))
	}
	if p.exitCode() != 0 {
		return slipway.WithFailure(slipway.Errorf(slipway.EUnprocessable, "%s", withLast("Release phase failed: the release command "+p.exitDescription())),
			releaseFailure(p.failure(slipway.FailReleasePhase, name, tl.lines())))
	}
	rep.Emit(slipway.EventInfo, name, "release", "release phase finished in %s", fmtMS(time.Since(p.started)))
	return nil
}

// releaseFailure is f in the release phase, however the command ended.
func releaseFailure(f *slipway.Failure) *slipway.Failure {
	f.Phase = slipway.FailReleasePhase
	return f
}

// releasePhasePath is the file holding the id of the app's last release
// whose release phase succeeded.
func (r *Runtime) releasePhasePath(appID string) string {
	return filepath.Join(r.cfg.DataDir, "apps", appID+".release-phase")
}

func (r *Runtime) releasePhaseRan(appID, releaseID string) bool {
	b, err := os.ReadFile(r.releasePhasePath(appID))
	return err == nil && strings.TrimSpace(string(b)) == releaseID
}

func (r *Runtime) markReleasePhase(appID, releaseID string) {
	path := r.releasePhasePath(appID)
	err := os.MkdirAll(filepath.Dir(path), 0o755)
	if err == nil {
		err = os.WriteFile(path, []byte(releaseID+"\n"), 0o644)
	}
	if err != nil {
		r.log.Warn("local runtime: recording the release phase", "app", appID, "err", err)
	}
}
