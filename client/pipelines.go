package client

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/slipway/slipway/wire"
)

// The pipeline answers and requests, under the client's names.
type (
	Pipeline             = wire.Pipeline
	StatusChecks         = wire.StatusChecks
	PipelineCoupling     = wire.PipelineCoupling
	NewPipelineCoupling  = wire.NewPipelineCoupling
	SourceApp            = wire.SourceApp
	AppRelease           = wire.AppRelease
	Target               = wire.Target
	PromotionSource      = wire.PromotionSource
	PipelineStatus       = wire.PipelineStatus
	NewPipelinePromotion = wire.NewPipelinePromotion
	PipelinePromotion    = wire.PipelinePromotion
	PromotionTarget      = wire.PromotionTarget
)

// CreatePipeline creates a pipeline. EUnprocessable for a bad name,
// EConflict when the name is taken.
func (c *Client) CreatePipeline(ctx context.Context, name, description string) (*Pipeline, error) {
	var out Pipeline
	err := c.Do(ctx, "POST", "/pipelines", wire.NewPipeline{Name: name, Description: description}, &out)
	return &out, err
}

// Pipelines lists pipelines.
func (c *Client) Pipelines(ctx context.Context) ([]Pipeline, error) {
	var out []Pipeline
	err := c.Do(ctx, "GET", "/pipelines", nil, &out)
	return out, err
}

// Pipeline gets a pipeline by id or name. ENotFound when unknown.
func (c *Client) Pipeline(ctx context.Context, pipeline string) (*Pipeline, error) {
	var out Pipeline
	err := c.Do(ctx, "GET", "/pipelines/"+esc(pipeline), nil, &out)
	return &out, err
}

// DeletePipeline deletes a pipeline. ENotFound when unknown.
func (c *Client) DeletePipeline(ctx context.Context, pipeline string) error {
	return c.Do(ctx, "DELETE", "/pipelines/"+esc(pipeline), nil, nil)
}

// PipelineStages lists the stages in order: review, development, staging,
// production.
func (c *Client) PipelineStages(ctx context.Context) ([]string, error) {
	var raw json.RawMessage
	if err := c.Do(ctx, "GET", "/pipeline-stages", nil, &raw); err != nil {
		return nil, err
	}
	return parseStages(raw)
}

// parseStages reads the map of each stage to the next that servers
// answer, {"review":"development",…,"production":null}, into the stages
// in order; the list ["review", …] of earlier servers is read too.
func parseStages(raw []byte) ([]string, error) {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return list, nil
	}
	var next map[string]*string
	if err := json.Unmarshal(raw, &next); err != nil {
		return nil, fmt.Errorf("pipeline-stages: %w", err)
	}
	// The first stage is the one no stage leads to.
	first := ""
	for s := range next {
		led := false
		for _, n := range next {
			led = led || (n != nil && *n == s)
		}
		if !led {
			first = s
		}
	}
	var out []string
	for s := first; s != "" && len(out) < len(next); {
		out = append(out, s)
		n := next[s]
		if n == nil {
			break
		}
		s = *n
	}
	if len(out) != len(next) {
		return nil, fmt.Errorf("pipeline-stages: %s is not one line of stages", raw)
	}
	return out, nil
}

// PipelineStatuses lists the release status contexts a pipeline's
// couplings can require. ENotFound for an unknown pipeline.
func (c *Client) PipelineStatuses(ctx context.Context, pipeline string) ([]PipelineStatus, error) {
	var out []PipelineStatus
	err := c.Do(ctx, "GET", "/pipelines/"+esc(pipeline)+"/statuses", nil, &out)
	return out, err
}

// CreatePipelineCoupling couples an app to a pipeline at a stage.
// EUnprocessable for an unknown stage or checks on "review", ENotFound for
// an unknown app or pipeline, EConflict when the app is coupled already.
func (c *Client) CreatePipelineCoupling(ctx context.Context, nc NewPipelineCoupling) (*PipelineCoupling, error) {
	var out PipelineCoupling
	err := c.Do(ctx, "POST", "/pipeline-couplings", nc, &out)
	return &out, err
}

// PipelineCouplings lists every coupling of every pipeline.
func (c *Client) PipelineCouplings(ctx context.Context) ([]PipelineCoupling, error) {
	var out []PipelineCoupling
	err := c.Do(ctx, "GET", "/pipeline-couplings", nil, &out)
	return out, err
}

// PipelineCouplingsOf lists the couplings of one pipeline.
func (c *Client) PipelineCouplingsOf(ctx context.Context, pipeline string) ([]PipelineCoupling, error) {
	var out []PipelineCoupling
	err := c.Do(ctx, "GET", "/pipelines/"+esc(pipeline)+"/pipeline-couplings", nil, &out)
	return out, err
}

// AppPipelineCoupling gets an app's coupling. ENotFound when the app is
// unknown or not coupled.
func (c *Client) AppPipelineCoupling(ctx context.Context, app string) (*PipelineCoupling, error) {
	var out PipelineCoupling
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/pipeline-couplings", nil, &out)
	return &out, err
}

// UpdatePipelineCoupling changes a coupling's required status checks.
func (c *Client) UpdatePipelineCoupling(ctx context.Context, id string, checks StatusChecks) (*PipelineCoupling, error) {
	var out PipelineCoupling
	err := c.Do(ctx, "PATCH", "/pipeline-couplings/"+esc(id), NewPipelineCoupling{RequiredStatusChecks: &checks}, &out)
	return &out, err
}

// DeletePipelineCoupling uncouples an app. ENotFound when unknown.
func (c *Client) DeletePipelineCoupling(ctx context.Context, id string) error {
	return c.Do(ctx, "DELETE", "/pipeline-couplings/"+esc(id), nil, nil)
}

// CreatePipelinePromotion promotes a release along a pipeline.
// EUnprocessable when a target is not at a later stage of the pipeline (or,
// with Safe, config var keys differ); EConflict when a required status
// check is not "success" on the promoted release.
func (c *Client) CreatePipelinePromotion(ctx context.Context, np NewPipelinePromotion) (*PipelinePromotion, error) {
	var out PipelinePromotion
	err := c.Do(ctx, "POST", "/pipeline-promotions", np, &out)
	return &out, err
}

// PipelinePromotion gets a promotion.
func (c *Client) PipelinePromotion(ctx context.Context, id string) (*PipelinePromotion, error) {
	var out PipelinePromotion
	err := c.Do(ctx, "GET", "/pipeline-promotions/"+esc(id), nil, &out)
	return &out, err
}

// PromotionTargets lists a promotion's targets and the releases they got.
func (c *Client) PromotionTargets(ctx context.Context, id string) ([]PromotionTarget, error) {
	var out []PromotionTarget
	err := c.Do(ctx, "GET", "/pipeline-promotions/"+esc(id)+"/promotion-targets", nil, &out)
	return out, err
}
