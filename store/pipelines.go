package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"sort"
	"strings"

	"github.com/slipway/slipway"
)

// CreatePipeline creates a pipeline; EConflict if the name is taken.
func (db *DB) CreatePipeline(ctx context.Context, p *slipway.Pipeline) error {
	if err := slipway.ValidateName("pipeline", p.Name); err != nil {
		return err
	}
	p.ID = newID()
	p.CreatedAt = db.Now().UTC()
	p.UpdatedAt = p.CreatedAt
	_, err := db.w.ExecContext(ctx, `INSERT INTO pipelines (id, name, created_at, updated_at) VALUES ($1, $2, $3, $3)`, p.ID, p.Name, micros(p.CreatedAt))
	if isUnique(err) {
		return slipway.Errorf(slipway.EConflict, "A pipeline named %q already exists.", p.Name)
	}
	return err
}

func scanPipeline(sc scanner) (*slipway.Pipeline, error) {
	var p slipway.Pipeline
	var c, u int64
	if err := sc.Scan(&p.ID, &p.Name, &c, &u); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(c), fromMicros(u)
	return &p, nil
}

// ListPipelines lists pipelines by name.
func (db *DB) ListPipelines(ctx context.Context) ([]*slipway.Pipeline, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT id, name, created_at, updated_at FROM pipelines ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.Pipeline{}
	for rows.Next() {
		p, err := scanPipeline(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// FindPipeline finds a pipeline by id or name; ENotFound if none.
func (db *DB) FindPipeline(ctx context.Context, idOrName string) (*slipway.Pipeline, error) {
	return findPipeline(ctx, db.r, idOrName)
}

func findPipeline(ctx context.Context, q querier, idOrName string) (*slipway.Pipeline, error) {
	col := "name"
	if isUUID(idOrName) {
		col = "id"
	}
	p, err := scanPipeline(q.QueryRowContext(ctx, `SELECT id, name, created_at, updated_at FROM pipelines WHERE `+col+` = $1`, idOrName))
	return p, notFound(err, "Pipeline %q was not found.", idOrName)
}

// DeletePipeline deletes a pipeline and its couplings.
func (db *DB) DeletePipeline(ctx context.Context, id string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM pipelines WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return slipway.Errorf(slipway.ENotFound, "Pipeline %q was not found.", slipway.Clip(id))
	}
	return nil
}

const couplingSelect = `SELECT c.id, c.pipeline_id, p.name, c.app_id, a.name, a.name || '-' || s.name, c.stage, c.required_checks, c.created_at, c.updated_at
	FROM pipeline_couplings c JOIN pipelines p ON p.id = c.pipeline_id JOIN apps a ON a.id = c.app_id JOIN spaces s ON s.id = a.space_id `

func scanCoupling(sc scanner) (*slipway.Coupling, error) {
	var c slipway.Coupling
	var checks string
	var cr, u int64
	if err := sc.Scan(&c.ID, &c.PipelineID, &c.PipelineName, &c.AppID, &c.AppName, &c.AppKey, &c.Stage, &checks, &cr, &u); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(checks), &c.RequiredChecks); err != nil || c.RequiredChecks == nil {
		c.RequiredChecks = []string{}
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(cr), fromMicros(u)
	return &c, nil
}

func validateChecks(stage string, checks []string) error {
	if len(checks) > 0 && stage == "review" {
		return slipway.Errorf(slipway.EUnprocessable, "required_status_checks are not allowed on the review stage.")
	}
	for _, c := range checks {
		st := slipway.ReleaseStatus{State: slipway.StateSuccess, Name: "check", Context: c}
		if err := st.Validate(); err != nil {
			return slipway.Errorf(slipway.EUnprocessable, "required_status_checks: %q is not a valid context (6 to 31 characters of letters, digits and . / \\ + -).", slipway.Clip(c))
		}
	}
	return nil
}

// CreateCoupling couples an app to a pipeline at a stage. EUnprocessable
// for an unknown stage or checks on review; EConflict if the app is
// coupled already.
func (db *DB) CreateCoupling(ctx context.Context, c *slipway.Coupling) error {
	if slipway.StageIndex(c.Stage) < 0 {
		return slipway.Errorf(slipway.EUnprocessable, "stage must be one of %s.", strings.Join(slipway.Stages(), ", "))
	}
	if c.RequiredChecks == nil {
		c.RequiredChecks = []string{}
	}
	if err := validateChecks(c.Stage, c.RequiredChecks); err != nil {
		return err
	}
	checks, _ := json.Marshal(c.RequiredChecks)
	id := newID()
	now := micros(db.Now())
	_, err := db.w.ExecContext(ctx, `INSERT INTO pipeline_couplings (id, pipeline_id, app_id, stage, required_checks, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)`,
		id, c.PipelineID, c.AppID, c.Stage, string(checks), now)
	if isUnique(err) {
		return slipway.Errorf(slipway.EConflict, "The app is already coupled to a pipeline; remove that coupling first.")
	}
	if err != nil {
		return err
	}
	got, err := db.FindCoupling(ctx, id)
	if err != nil {
		return err
	}
	*c = *got
	return nil
}

// ListCouplings lists couplings by pipeline, stage and app; pipelineID or
// appID narrow it.
func (db *DB) ListCouplings(ctx context.Context, pipelineID, appID string) ([]*slipway.Coupling, error) {
	return listCouplings(ctx, db.r, pipelineID, appID)
}

func listCouplings(ctx context.Context, q querier, pipelineID, appID string) ([]*slipway.Coupling, error) {
	rows, err := q.QueryContext(ctx, couplingSelect+`WHERE ($1 = '' OR c.pipeline_id = $1) AND ($2 = '' OR c.app_id = $2) ORDER BY p.name, c.created_at`, pipelineID, appID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.Coupling{}
	for rows.Next() {
		c, err := scanCoupling(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].PipelineName != out[j].PipelineName {
			return out[i].PipelineName < out[j].PipelineName
		}
		return slipway.StageIndex(out[i].Stage) < slipway.StageIndex(out[j].Stage)
	})
	return out, rows.Err()
}

// FindCoupling finds a coupling by id; ENotFound if none.
func (db *DB) FindCoupling(ctx context.Context, id string) (*slipway.Coupling, error) {
	if !isUUID(id) {
		return nil, slipway.Errorf(slipway.ENotFound, "Pipeline coupling %q was not found.", slipway.Clip(id))
	}
	c, err := scanCoupling(db.w.QueryRowContext(ctx, couplingSelect+`WHERE c.id = $1`, id))
	return c, notFound(err, "Pipeline coupling %q was not found.", id)
}

// ListPipelineStatuses lists the contexts of every release status posted
// on a release of an app coupled to the pipeline, and those its couplings
// require, by context. A context's name is the one its newest status
// gave.
func (db *DB) ListPipelineStatuses(ctx context.Context, pipelineID string) ([]slipway.StatusContext, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT rs.context, rs.name FROM release_statuses rs
		JOIN releases r ON r.id = rs.release_id JOIN pipeline_couplings c ON c.app_id = r.app_id
		WHERE c.pipeline_id = $1 ORDER BY rs.updated_at, rs.id`, pipelineID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for rows.Next() {
		var c, n string
		if err := rows.Scan(&c, &n); err != nil {
			rows.Close()
			return nil, err
		}
		names[c] = n // newer rows come later and win
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	cs, err := listCouplings(ctx, db.r, pipelineID, "")
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		for _, ctxName := range c.RequiredChecks {
			if _, ok := names[ctxName]; !ok {
				names[ctxName] = ctxName
			}
		}
	}
	out := make([]slipway.StatusContext, 0, len(names))
	for c, n := range names {
		out = append(out, slipway.StatusContext{Context: c, Name: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Context < out[j].Context })
	return out, nil
}

// UpdateCouplingChecks sets a coupling's required status checks.
func (db *DB) UpdateCouplingChecks(ctx context.Context, id string, checks []string) (*slipway.Coupling, error) {
	c, err := db.FindCoupling(ctx, id)
	if err != nil {
		return nil, err
	}
	if checks == nil {
		checks = []string{}
	}
	if err := validateChecks(c.Stage, checks); err != nil {
		return nil, err
	}
	b, _ := json.Marshal(checks)
	if _, err := db.w.ExecContext(ctx, `UPDATE pipeline_couplings SET required_checks = $1, updated_at = $2 WHERE id = $3`, string(b), micros(db.Now()), id); err != nil {
		return nil, err
	}
	return db.FindCoupling(ctx, id)
}

// DeleteCoupling removes a coupling; ENotFound if none.
func (db *DB) DeleteCoupling(ctx context.Context, id string) error {
	res, err := db.w.ExecContext(ctx, `DELETE FROM pipeline_couplings WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return slipway.Errorf(slipway.ENotFound, "Pipeline coupling %q was not found.", slipway.Clip(id))
	}
	return nil
}

// downstreamCheck refuses a slug release to an app coupled at a stage
// that has an earlier stage with apps in the same pipeline.
func downstreamCheck(ctx context.Context, tx *sql.Tx, app *slipway.App) error {
	var pipelineID, stage, pipelineName string
	err := tx.QueryRowContext(ctx, `SELECT c.pipeline_id, c.stage, p.name FROM pipeline_couplings c JOIN pipelines p ON p.id = c.pipeline_id WHERE c.app_id = $1`, app.ID).
		Scan(&pipelineID, &stage, &pipelineName)
	if err == sql.ErrNoRows {
		return nil
	}
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT DISTINCT stage FROM pipeline_couplings WHERE pipeline_id = $1`, pipelineID)
	if err != nil {
		return err
	}
	defer rows.Close()
	earlier := ""
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return err
		}
		if slipway.StageIndex(s) < slipway.StageIndex(stage) && (earlier == "" || slipway.StageIndex(s) > slipway.StageIndex(earlier)) {
			earlier = s
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if earlier != "" {
		return slipway.Errorf(slipway.EUnprocessable, "%s is a %s app of pipeline %s, downstream of %s: promote a release from %s with POST /pipeline-promotions instead of releasing to it directly.",
			app.Key(), stage, pipelineName, earlier, earlier)
	}
	return nil
}
