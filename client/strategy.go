package client

import (
	"context"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// Rollout is the progress of a canary or blue-green release, as
// Release.Rollout carries it (nil for a rolling release).
type Rollout = wire.Rollout

// ReleaseStrategy gets how an app's releases roll out; {"type":"rolling"}
// unless one was set. ENotFound for an unknown app.
func (c *Client) ReleaseStrategy(ctx context.Context, app string) (*slipway.Strategy, error) {
	var out slipway.Strategy
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/release-strategy", nil, &out)
	return &out, err
}

// SetReleaseStrategy replaces an app's release strategy and returns it as
// stored, defaults filled. EUnprocessable naming the field that breaks a
// rule (s.Validate finds the same before sending), ENotFound for an
// unknown app.
func (c *Client) SetReleaseStrategy(ctx context.Context, app string, s slipway.Strategy) (*slipway.Strategy, error) {
	var out slipway.Strategy
	err := c.Do(ctx, "PUT", "/apps/"+esc(app)+"/release-strategy", s, &out)
	return &out, err
}

// Release actions: what PromoteRelease, AbortRelease, PauseRelease and
// ResumeRelease post to /apps/{app}/releases/{id}/actions/{action}.
const (
	ActionPromote = "promote"
	ActionAbort   = "abort"
	ActionPause   = "pause"
	ActionResume  = "resume"
)

// PromoteRelease moves a rolling-out release (id or vN) to its next step,
// or with full straight to 100%, and returns it. EConflict when the
// release is not rolling out; ENotFound for an unknown app or release.
func (c *Client) PromoteRelease(ctx context.Context, app, release string, full bool) (*Release, error) {
	var body any
	if full {
		body = wire.ReleaseAction{Full: true}
	}
	return c.releaseAction(ctx, app, release, ActionPromote, body)
}

// AbortRelease sends a rolling-out release's traffic back to the stable
// release at once; the release ends failed. EConflict when the release
// is not rolling out.
func (c *Client) AbortRelease(ctx context.Context, app, release string) (*Release, error) {
	return c.releaseAction(ctx, app, release, ActionAbort, nil)
}

// PauseRelease holds a rolling-out release at its step until it is
// resumed or promoted. EConflict when the release is not rolling out.
func (c *Client) PauseRelease(ctx context.Context, app, release string) (*Release, error) {
	return c.releaseAction(ctx, app, release, ActionPause, nil)
}

// ResumeRelease lets a paused release go on with its steps. EConflict
// when the release is not rolling out.
func (c *Client) ResumeRelease(ctx context.Context, app, release string) (*Release, error) {
	return c.releaseAction(ctx, app, release, ActionResume, nil)
}

func (c *Client) releaseAction(ctx context.Context, app, release, action string, body any) (*Release, error) {
	var out Release
	err := c.Do(ctx, "POST", "/apps/"+esc(app)+"/releases/"+esc(release)+"/actions/"+action, body, &out)
	return &out, err
}
