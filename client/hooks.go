package client

import (
	"context"

	"github.com/slipway/slipway/wire"
)

// Hook is a webhook of an app. The API never shows its secret.
type Hook = wire.Hook

// NewHook is a webhook request; nil fields are not sent (and stay as they
// are on an update). Events are among slipway.HookEvents(); Secret signs
// every delivery.
type NewHook = wire.HookChange

// HookResult is one delivery attempt of a webhook.
type HookResult = wire.HookResult

// CreateHook adds a webhook to an app. EUnprocessable for a bad URL or an
// unknown event.
func (c *Client) CreateHook(ctx context.Context, app string, h NewHook) (*Hook, error) {
	var out Hook
	err := c.Do(ctx, "POST", "/apps/"+esc(app)+"/hooks", h, &out)
	return &out, err
}

// Hooks lists an app's webhooks.
func (c *Client) Hooks(ctx context.Context, app string) ([]Hook, error) {
	var out []Hook
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/hooks", nil, &out)
	return out, err
}

// Hook gets one webhook. ENotFound when unknown.
func (c *Client) Hook(ctx context.Context, app, id string) (*Hook, error) {
	var out Hook
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/hooks/"+esc(id), nil, &out)
	return &out, err
}

// UpdateHook changes a webhook; nil fields of h are left as they are.
func (c *Client) UpdateHook(ctx context.Context, app, id string, h NewHook) (*Hook, error) {
	var out Hook
	err := c.Do(ctx, "PATCH", "/apps/"+esc(app)+"/hooks/"+esc(id), h, &out)
	return &out, err
}

// DeleteHook removes a webhook. ENotFound when unknown.
func (c *Client) DeleteHook(ctx context.Context, app, id string) error {
	return c.Do(ctx, "DELETE", "/apps/"+esc(app)+"/hooks/"+esc(id), nil, nil)
}

// HookResults lists a webhook's delivery attempts.
func (c *Client) HookResults(ctx context.Context, app, id string) ([]HookResult, error) {
	var out []HookResult
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/hooks/"+esc(id)+"/results", nil, &out)
	return out, err
}

// HookResult gets one delivery attempt of a webhook. ENotFound when
// unknown.
func (c *Client) HookResult(ctx context.Context, app, hook, id string) (*HookResult, error) {
	var out HookResult
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/hooks/"+esc(hook)+"/results/"+esc(id), nil, &out)
	return &out, err
}
