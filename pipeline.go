package slipway

import (
	"context"
	"time"
)

var stages = [...]string{"review", "development", "staging", "production"}

// Stages returns the pipeline stages, in promotion order.
func Stages() []string { return append([]string(nil), stages[:]...) }

// NextStage returns the stage after stage, "" for the last one or an
// unknown one.
func NextStage(stage string) string {
	if i := StageIndex(stage); i >= 0 && i+1 < len(stages) {
		return stages[i+1]
	}
	return ""
}

// StageIndex returns the stage's place in Stages, or -1.
func StageIndex(stage string) int {
	for i, s := range stages {
		if s == stage {
			return i
		}
	}
	return -1
}

// Pipeline couples apps at stages, from development to production.
type Pipeline struct {
	ID        string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Coupling places an app at a stage of a pipeline.
type Coupling struct {
	ID             string
	PipelineID     string
	PipelineName   string
	AppID          string
	AppName        string
	AppKey         string
	Stage          string
	RequiredChecks []string // contexts that must be success before promoting from this app
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// NewPromotion asks to release a source app's release on later apps.
type NewPromotion struct {
	Pipeline  string   // id or name
	SourceApp string   // id or key
	Release   string   // id or vN; "" for the source's current release
	Targets   []string // app ids or keys; empty means every app of the next stage that has apps
	Safe      bool     // refuse when config var keys differ
	UserID    string
	UserEmail string
}

// Promotion is a promotion and what became of each target.
type Promotion struct {
	ID              string
	PipelineID      string
	PipelineName    string
	SourceAppID     string
	SourceAppKey    string // the source app's key, name-space
	SourceReleaseID string
	Status          string // pending until every target ends, then succeeded or failed
	Targets         []PromotionTarget
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// PromotionTarget is one app a promotion released to.
type PromotionTarget struct {
	ID        string
	AppID     string
	AppKey    string // the target app's key, name-space; "" once the app is deleted
	ReleaseID string
	Status    string // the target release's status
	Error     string
}

// StatusContext is a release status context that a pipeline's couplings
// can require: Name is the name the newest status with that context gave
// it (the context itself when only a coupling names it).
type StatusContext struct {
	Context string
	Name    string
}

// PipelineStore keeps pipelines, the apps coupled to them and promotions.
type PipelineStore interface {
	// CreatePipeline creates p and sets its id and times. EUnprocessable
	// for an invalid name, EConflict if it is taken.
	CreatePipeline(ctx context.Context, p *Pipeline) error
	// ListPipelines lists every pipeline by name.
	ListPipelines(ctx context.Context) ([]*Pipeline, error)
	// FindPipeline finds a pipeline by id or name; ENotFound if none.
	FindPipeline(ctx context.Context, idOrName string) (*Pipeline, error)
	// DeletePipeline deletes a pipeline and its couplings; ENotFound if
	// none.
	DeletePipeline(ctx context.Context, id string) error
	// CreateCoupling couples c.AppID to c.PipelineID at c.Stage and fills
	// in c. EUnprocessable for an unknown stage or invalid required
	// checks (or any on the review stage); EConflict if the app is coupled
	// already.
	CreateCoupling(ctx context.Context, c *Coupling) error
	// ListCouplings lists couplings by pipeline name and stage order: all,
	// or those of one pipeline or one app ("" for any).
	ListCouplings(ctx context.Context, pipelineID, appID string) ([]*Coupling, error)
	// FindCoupling finds a coupling by id; ENotFound if none.
	FindCoupling(ctx context.Context, id string) (*Coupling, error)
	// ListPipelineStatuses lists, by context, the release status contexts
	// available to the pipeline's required checks: those posted on any
	// release of an app coupled to it, and those its couplings already
	// require. ENotFound for an unknown pipeline.
	ListPipelineStatuses(ctx context.Context, pipelineID string) ([]StatusContext, error)
	// UpdateCouplingChecks sets a coupling's required status checks and
	// returns it. ENotFound for an unknown coupling; EUnprocessable for
	// invalid checks.
	UpdateCouplingChecks(ctx context.Context, id string, checks []string) (*Coupling, error)
	// DeleteCoupling removes a coupling; ENotFound if none.
	DeleteCoupling(ctx context.Context, id string) error
	// CreatePromotion checks the rules of a promotion and queues a release
	// of the source's slug, with each target's own config, on every
	// target, in one transaction. ENotFound for an unknown pipeline;
	// EUnprocessable for a source or target that is not coupled, not
	// found, or not at a later stage, a source release that has not
	// succeeded, or (Safe) config var keys that differ; EConflict for
	// required checks of the source that are not success.
	CreatePromotion(ctx context.Context, p NewPromotion) (*Promotion, error)
	// FindPromotion returns a promotion with the status of each target's
	// release; ENotFound if none.
	FindPromotion(ctx context.Context, id string) (*Promotion, error)
}
