package client

import (
	"context"
	"encoding/json"
	"time"
)

// Hook is a webhook of an app. The API never shows its secret.
type Hook struct {
	ID        string    `json:"id"`
	App       Ref       `json:"app"`
	URL       string    `json:"url"`
	Events    []string  `json:"events"`
	Active    bool      `json:"active"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// NewHook is a webhook request. Events are among build, release, released,
// release_failed, formation_change, config_change, pipeline_promotion and
// destroy; Secret signs every delivery.
type NewHook struct {
	URL    string   `json:"url,omitempty"`
	Events []string `json:"events,omitempty"`
	Secret string   `json:"secret,omitempty"`
	Active *bool    `json:"active,omitempty"`
}

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

// UpdateHook changes a webhook; zero fields of h are left as they are.
func (c *Client) UpdateHook(ctx context.Context, app, id string, h NewHook) (*Hook, error) {
	var out Hook
	err := c.Do(ctx, "PATCH", "/apps/"+esc(app)+"/hooks/"+esc(id), h, &out)
	return &out, err
}

// DeleteHook removes a webhook. ENotFound when unknown.
func (c *Client) DeleteHook(ctx context.Context, app, id string) error {
	return c.Do(ctx, "DELETE", "/apps/"+esc(app)+"/hooks/"+esc(id), nil, nil)
}

// HookResults lists a webhook's delivery attempts as the server shows them.
func (c *Client) HookResults(ctx context.Context, app, id string) ([]json.RawMessage, error) {
	var out []json.RawMessage
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/hooks/"+esc(id)+"/results", nil, &out)
	return out, err
}
