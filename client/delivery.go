package client

import (
	"context"
	"net/url"

	"github.com/slipway/slipway/wire"
)

// ReleaseDiff and DeliveryMetrics are the API's shapes.
type (
	ReleaseDiff     = wire.ReleaseDiff
	KeyChanges      = wire.KeyChanges
	DiffSlug        = wire.DiffSlug
	DeliveryMetrics = wire.DeliveryMetrics
)

// ReleaseDiff gets what changed from against (an id or vN; "" for the
// release that was current when id was created) to release id.
func (c *Client) ReleaseDiff(ctx context.Context, app, id, against string) (*ReleaseDiff, error) {
	path := "/apps/" + esc(app) + "/releases/" + esc(id) + "/diff"
	if against != "" {
		path += "?against=" + url.QueryEscape(against)
	}
	var out ReleaseDiff
	return &out, c.Do(ctx, "GET", path, nil, &out)
}

// AppDeliveryMetrics gets an app's delivery metrics over window ("30d",
// "12h"; "" for 30d).
func (c *Client) AppDeliveryMetrics(ctx context.Context, app, window string) (*DeliveryMetrics, error) {
	return c.deliveryMetrics(ctx, "/apps/"+esc(app)+"/delivery-metrics", window)
}

// PipelineDeliveryMetrics gets the delivery metrics of a pipeline's
// production-stage apps over window.
func (c *Client) PipelineDeliveryMetrics(ctx context.Context, pipeline, window string) (*DeliveryMetrics, error) {
	return c.deliveryMetrics(ctx, "/pipelines/"+esc(pipeline)+"/delivery-metrics", window)
}

func (c *Client) deliveryMetrics(ctx context.Context, path, window string) (*DeliveryMetrics, error) {
	if window != "" {
		path += "?window=" + url.QueryEscape(window)
	}
	var out DeliveryMetrics
	return &out, c.Do(ctx, "GET", path, nil, &out)
}
