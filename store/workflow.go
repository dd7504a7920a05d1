package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/slipway/slipway"
)

// emit writes event to the outbox of every active hook of the app that
// subscribes to it, in the caller's transaction, so an event and its
// deliveries are written together or not at all.
func (db *DB) emit(ctx context.Context, tx *sql.Tx, app *slipway.App, event string, data map[string]any) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, url, secret, events, scoped FROM hooks WHERE app_id = $1 AND active = 1`, app.ID)
	if err != nil {
		return err
	}
	type target struct {
		id, url, secret string
		scoped          int
	}
	var targets []target
	for rows.Next() {
		var t target
		var events string
		if err := rows.Scan(&t.id, &t.url, &t.secret, &events, &t.scoped); err != nil {
			rows.Close()
			return err
		}
		var evs []string
		json.Unmarshal([]byte(events), &evs)
		for _, e := range evs {
			if e == event {
				targets = append(targets, t)
				break
			}
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil || len(targets) == 0 {
		return err
	}
	now := db.Now().UTC()
	payload := map[string]any{
		"action": event, "app": map[string]string{"id": app.ID, "name": app.Name},
		"space": map[string]string{"name": app.SpaceName}, "key": app.Key(),
		"created_at": now.Format("2006-01-02T15:04:05.000Z"),
	}
	for k, v := range data {
		payload[k] = v
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	for _, t := range targets {
		_, err := tx.ExecContext(ctx, `INSERT INTO hook_deliveries (id, hook_id, app_id, event, url, secret, payload, scoped, status, attempts, next_at, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', 0, $9, $9, $9)`, newID(), t.id, app.ID, event, t.url, t.secret, string(body), t.scoped, micros(now))
		if err != nil {
			return err
		}
	}
	return nil
}

// audit records who did what to the app, in the caller's transaction.
func (db *DB) audit(ctx context.Context, tx *sql.Tx, app *slipway.App, action, detail string) error {
	a := slipway.ActorFrom(ctx)
	_, err := tx.ExecContext(ctx, `INSERT INTO audits (id, app_id, app_key, action, detail, user_id, user_email, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		newID(), app.ID, app.Key(), action, detail, a.ID, a.Email, micros(db.Now()))
	return err
}

// EmitEvent writes an event to the outbox of the app's hooks.
func (db *DB) EmitEvent(ctx context.Context, appID, event string, data map[string]any) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		app, err := db.findApp(ctx, tx, "", appID)
		if err != nil {
			return err
		}
		return db.emit(ctx, tx, app, event, data)
	})
}

func releaseEventData(r *slipway.Release) map[string]any {
	rel := map[string]any{"id": r.ID, "version": r.Version, "description": r.Description, "status": r.Status,
		"trigger": r.Trigger, "slug": map[string]string{"id": r.SlugID}}
	if r.Error != "" {
		rel["error"] = r.Error
	}
	return map[string]any{"release": rel}
}

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

// CreatePromotion checks a promotion against the pipeline's rules and
// queues a release of the source's slug, with each target's own config, on
// every target. EUnprocessable for targets outside the pipeline or not
// later, a source release that has not succeeded, or (safe) differing config
// keys; EConflict for required checks that are not success.
func (db *DB) CreatePromotion(ctx context.Context, np slipway.NewPromotion) (*slipway.Promotion, error) {
	var id string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.createPromotion(ctx, tx, np)
		return err
	})
	if err != nil {
		return nil, err
	}
	return db.FindPromotion(ctx, id)
}

func (db *DB) createPromotion(ctx context.Context, tx *sql.Tx, np slipway.NewPromotion) (string, error) {
	pl, err := findPipeline(ctx, tx, np.Pipeline)
	if err != nil {
		return "", err
	}
	couplings, err := listCouplings(ctx, tx, pl.ID, "")
	if err != nil {
		return "", err
	}
	byApp := map[string]*slipway.Coupling{}
	for _, c := range couplings {
		byApp[c.AppID] = c
	}
	src, err := db.findApp(ctx, tx, "", np.SourceApp)
	if err != nil {
		return "", unprocessableIfNotFound(err)
	}
	srcCoupling := byApp[src.ID]
	if srcCoupling == nil {
		return "", slipway.Errorf(slipway.EUnprocessable, "The source app %s is not coupled to pipeline %s.", src.Key(), pl.Name)
	}
	var rel *slipway.Release
	if np.Release != "" {
		rel, err = db.findReleaseOf(ctx, tx, src.ID, np.Release)
	} else {
		rel, err = db.findRelease(ctx, tx, "r.id = a.current_release_id AND a.id = $1", src.ID)
		if slipway.ErrorCode(err) == slipway.ENotFound {
			return "", slipway.Errorf(slipway.EUnprocessable, "The source app %s has no current release to promote.", src.Key())
		}
	}
	if err != nil {
		return "", unprocessableIfNotFound(err)
	}
	if rel.Status != slipway.ReleaseSucceeded {
		return "", slipway.Errorf(slipway.EUnprocessable, "Release v%d of %s is %s; only a succeeded release can be promoted.", rel.Version, src.Key(), rel.Status)
	}
	// Every required check of the source coupling must be success.
	if len(srcCoupling.RequiredChecks) > 0 {
		states := map[string]string{}
		rows, err := tx.QueryContext(ctx, `SELECT context, state FROM release_statuses WHERE release_id = $1`, rel.ID)
		if err != nil {
			return "", err
		}
		for rows.Next() {
			var c, s string
			if err := rows.Scan(&c, &s); err != nil {
				rows.Close()
				return "", err
			}
			states[c] = s
		}
		rows.Close()
		var bad []string
		for _, c := range srcCoupling.RequiredChecks {
			switch s, ok := states[c]; {
			case !ok:
				bad = append(bad, c+" (missing)")
			case s != slipway.StateSuccess:
				bad = append(bad, c+" ("+s+")")
			}
		}
		if len(bad) > 0 {
			return "", slipway.Errorf(slipway.EConflict, "Release v%d of %s cannot be promoted until its required status checks succeed: %s.", rel.Version, src.Key(), strings.Join(bad, ", "))
		}
	}
	// Targets: as given, or every app of the next stage that has apps.
	var targets []*slipway.App
	if len(np.Targets) == 0 {
		next := -1
		for _, c := range couplings {
			if i := slipway.StageIndex(c.Stage); i > slipway.StageIndex(srcCoupling.Stage) && (next < 0 || i < next) {
				next = i
			}
		}
		for _, c := range couplings {
			if slipway.StageIndex(c.Stage) == next {
				a, err := db.findApp(ctx, tx, "", c.AppID)
				if err != nil {
					return "", err
				}
				targets = append(targets, a)
			}
		}
		if len(targets) == 0 {
			return "", slipway.Errorf(slipway.EUnprocessable, "No app of pipeline %s is at a stage after %s; couple one or name the targets.", pl.Name, srcCoupling.Stage)
		}
	}
	seen := map[string]bool{}
	for _, t := range np.Targets {
		a, err := db.findApp(ctx, tx, "", t)
		if err != nil {
			return "", unprocessableIfNotFound(err)
		}
		c := byApp[a.ID]
		if c == nil {
			return "", slipway.Errorf(slipway.EUnprocessable, "Target %s is not coupled to pipeline %s.", a.Key(), pl.Name)
		}
		if slipway.StageIndex(c.Stage) <= slipway.StageIndex(srcCoupling.Stage) {
			return "", slipway.Errorf(slipway.EUnprocessable, "Target %s is at %s, not after the source's stage %s.", a.Key(), c.Stage, srcCoupling.Stage)
		}
		if !seen[a.ID] {
			seen[a.ID] = true
			targets = append(targets, a)
		}
	}
	srcCfg, err := configVars(ctx, tx, src.ID)
	if err != nil {
		return "", err
	}
	id := newID()
	now := micros(db.Now())
	if _, err := tx.ExecContext(ctx, `INSERT INTO promotions (id, pipeline_id, source_app_id, source_release_id, safe, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6)`,
		id, pl.ID, src.ID, rel.ID, boolInt(np.Safe), now); err != nil {
		return "", err
	}
	for _, t := range targets {
		cfg, err := configVars(ctx, tx, t.ID)
		if err != nil {
			return "", err
		}
		if np.Safe {
			if diff := keyDiff(srcCfg, cfg); len(diff) > 0 {
				return "", slipway.Errorf(slipway.EUnprocessable, "safe promotion refused: config var keys of %s and %s differ: %s.", src.Key(), t.Key(), strings.Join(diff, ", "))
			}
		}
		relID, err := db.createRelease(ctx, tx, slipway.NewRelease{
			AppID: t.ID, SlugID: rel.SlugID, Trigger: slipway.TriggerPromotion, Promotion: true, Config: cfg,
			Description: fmt.Sprintf("Promotion of %s v%d", src.Key(), rel.Version), UserID: np.UserID, UserEmail: np.UserEmail,
		})
		if err != nil {
			return "", err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO promotion_targets (id, promotion_id, app_id, release_id) VALUES ($1, $2, $3, $4)`, newID(), id, t.ID, relID); err != nil {
			return "", err
		}
		if err := db.emit(ctx, tx, t, slipway.EventPipelinePromoted, map[string]any{"promotion": map[string]any{
			"id": id, "pipeline": map[string]string{"id": pl.ID, "name": pl.Name}, "source": map[string]any{"app": map[string]string{"id": src.ID, "name": src.Name}, "release": map[string]any{"id": rel.ID, "version": rel.Version}},
			"release": map[string]string{"id": relID},
		}}); err != nil {
			return "", err
		}
	}
	return id, nil
}

// keyDiff lists keys set on one side only, marked with where they are.
func keyDiff(a, b map[string]string) []string {
	var out []string
	for k := range a {
		if _, ok := b[k]; !ok {
			out = append(out, k+" (only on source)")
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k+" (only on target)")
		}
	}
	sort.Strings(out)
	return out
}

// FindPromotion returns a promotion with each target's release status.
func (db *DB) FindPromotion(ctx context.Context, id string) (*slipway.Promotion, error) {
	if !isUUID(id) {
		return nil, slipway.Errorf(slipway.ENotFound, "Pipeline promotion %q was not found.", slipway.Clip(id))
	}
	var p slipway.Promotion
	var c, u int64
	err := db.w.QueryRowContext(ctx, `SELECT pr.id, pr.pipeline_id, p.name, pr.source_app_id, pr.source_release_id, pr.created_at, pr.updated_at
		FROM promotions pr JOIN pipelines p ON p.id = pr.pipeline_id WHERE pr.id = $1`, id).
		Scan(&p.ID, &p.PipelineID, &p.PipelineName, &p.SourceAppID, &p.SourceReleaseID, &c, &u)
	if err != nil {
		return nil, notFound(err, "Pipeline promotion %q was not found.", id)
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(c), fromMicros(u)
	rows, err := db.w.QueryContext(ctx, `SELECT t.id, t.app_id, t.release_id, COALESCE(r.status, 'unknown'), COALESCE(r.error, '')
		FROM promotion_targets t LEFT JOIN releases r ON r.id = t.release_id WHERE t.promotion_id = $1 ORDER BY t.id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	p.Status = slipway.ReleaseSucceeded
	for rows.Next() {
		var t slipway.PromotionTarget
		if err := rows.Scan(&t.ID, &t.AppID, &t.ReleaseID, &t.Status, &t.Error); err != nil {
			return nil, err
		}
		switch {
		case !slipway.ReleaseTerminal(t.Status):
			p.Status = slipway.ReleasePending
		case t.Status == slipway.ReleaseFailed && p.Status != slipway.ReleasePending:
			p.Status = slipway.ReleaseFailed
		}
		p.Targets = append(p.Targets, t)
	}
	return &p, rows.Err()
}

// CreateHook creates an app's webhook; EUnprocessable for a bad field.
func (db *DB) CreateHook(ctx context.Context, h *slipway.Hook) error {
	if err := h.Validate(); err != nil {
		return err
	}
	h.ID = newID()
	h.CreatedAt = db.Now().UTC()
	h.UpdatedAt = h.CreatedAt
	events, _ := json.Marshal(h.Events)
	_, err := db.w.ExecContext(ctx, `INSERT INTO hooks (id, app_id, url, events, secret, active, created_by, scoped, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)`,
		h.ID, h.AppID, h.URL, string(events), h.Secret, boolInt(h.Active), h.CreatedBy, boolInt(h.Scoped), micros(h.CreatedAt))
	return err
}

const hookColumns = `id, app_id, url, events, secret, active, created_by, scoped, created_at, updated_at`

func scanHook(sc scanner) (*slipway.Hook, error) {
	var h slipway.Hook
	var events string
	var active, scoped int
	var c, u int64
	if err := sc.Scan(&h.ID, &h.AppID, &h.URL, &events, &h.Secret, &active, &h.CreatedBy, &scoped, &c, &u); err != nil {
		return nil, err
	}
	json.Unmarshal([]byte(events), &h.Events)
	h.Active, h.Scoped = active != 0, scoped != 0
	h.CreatedAt, h.UpdatedAt = fromMicros(c), fromMicros(u)
	return &h, nil
}

// ListHooks lists an app's hooks.
func (db *DB) ListHooks(ctx context.Context, appID string) ([]*slipway.Hook, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+hookColumns+` FROM hooks WHERE app_id = $1 ORDER BY created_at`, appID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.Hook{}
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// FindHook finds a hook of the app; ENotFound if none.
func (db *DB) FindHook(ctx context.Context, appID, id string) (*slipway.Hook, error) {
	if !isUUID(id) {
		return nil, slipway.Errorf(slipway.ENotFound, "Hook %q was not found.", slipway.Clip(id))
	}
	h, err := scanHook(db.w.QueryRowContext(ctx, `SELECT `+hookColumns+` FROM hooks WHERE id = $1 AND app_id = $2`, id, appID))
	return h, notFound(err, "Hook %q was not found.", id)
}

// UpdateHook saves a hook's url, events, secret, active and scoped flags.
func (db *DB) UpdateHook(ctx context.Context, h *slipway.Hook) error {
	if err := h.Validate(); err != nil {
		return err
	}
	h.UpdatedAt = db.Now().UTC()
	events, _ := json.Marshal(h.Events)
	_, err := db.w.ExecContext(ctx, `UPDATE hooks SET url = $1, events = $2, secret = $3, active = $4, scoped = $5, updated_at = $6 WHERE id = $7 AND app_id = $8`,
		h.URL, string(events), h.Secret, boolInt(h.Active), boolInt(h.Scoped), micros(h.UpdatedAt), h.ID, h.AppID)
	return err
}

// DeleteHook deletes a hook; its pending deliveries are dropped.
func (db *DB) DeleteHook(ctx context.Context, appID, id string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM hooks WHERE id = $1 AND app_id = $2`, id, appID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return slipway.Errorf(slipway.ENotFound, "Hook %q was not found.", slipway.Clip(id))
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM hook_deliveries WHERE hook_id = $1 AND status = 'pending'`, id)
		return err
	})
}

// ListHookResults lists a hook's delivery attempts, oldest first.
func (db *DB) ListHookResults(ctx context.Context, hookID string, p slipway.Page) ([]*slipway.HookResult, error) {
	q := `SELECT id, hook_id, delivery_id, event, attempt, request_headers, status_code, duration_us, error, created_at FROM hook_results WHERE hook_id = $1`
	args := []any{hookID}
	if p.Start != "" {
		start, err := strconv.ParseInt(p.Start, 10, 64)
		if err != nil {
			return nil, slipway.Errorf(slipway.EInvalid, "Range start %q is not a created_at value from Next-Range.", slipway.Clip(p.Start))
		}
		q += ` AND created_at ` + pageOp(p) + ` $2`
		args = append(args, start)
	}
	q += pageOrder("created_at, id", p)
	rows, err := db.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.HookResult{}
	for rows.Next() {
		var r slipway.HookResult
		var hdr string
		var dur, c int64
		if err := rows.Scan(&r.ID, &r.HookID, &r.DeliveryID, &r.Event, &r.Attempt, &hdr, &r.StatusCode, &dur, &r.Error, &c); err != nil {
			return nil, err
		}
		json.Unmarshal([]byte(hdr), &r.RequestHeaders)
		r.Duration = time.Duration(dur) * time.Microsecond
		r.CreatedAt = fromMicros(c)
		out = append(out, &r)
	}
	return out, rows.Err()
}

// ClaimDeliveries takes up to n due deliveries and pushes their next
// attempt lease into the future, so no other server sends them meanwhile.
func (db *DB) ClaimDeliveries(ctx context.Context, n int, lease time.Duration) ([]*slipway.Delivery, error) {
	// Look before taking the write lock: most polls find nothing.
	var due int
	err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM (SELECT 1 FROM hook_deliveries WHERE status = 'pending' AND next_at <= $1 LIMIT 1) d`, micros(db.Now())).Scan(&due)
	if err != nil || due == 0 {
		return nil, err
	}
	var out []*slipway.Delivery
	err = db.tx(ctx, func(tx *sql.Tx) error {
		now := db.Now()
		rows, err := tx.QueryContext(ctx, `SELECT id, hook_id, event, url, secret, payload, scoped, attempts, next_at, created_at FROM hook_deliveries
			WHERE status = 'pending' AND next_at <= $1 ORDER BY next_at LIMIT `+strconv.Itoa(n), micros(now))
		if err != nil {
			return err
		}
		type claim struct {
			d    *slipway.Delivery
			next int64
		}
		var claims []claim
		for rows.Next() {
			var d slipway.Delivery
			var payload string
			var scoped int
			var next, c int64
			if err := rows.Scan(&d.ID, &d.HookID, &d.Event, &d.URL, &d.Secret, &payload, &scoped, &d.Attempts, &next, &c); err != nil {
				rows.Close()
				return err
			}
			d.Payload, d.Scoped = []byte(payload), scoped != 0
			d.CreatedAt = fromMicros(c)
			claims = append(claims, claim{&d, next})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, c := range claims {
			res, err := tx.ExecContext(ctx, `UPDATE hook_deliveries SET next_at = $1 WHERE id = $2 AND next_at = $3 AND status = 'pending'`,
				micros(now.Add(lease)), c.d.ID, c.next)
			if err != nil {
				return err
			}
			if k, _ := res.RowsAffected(); k == 1 {
				out = append(out, c.d)
			}
		}
		return nil
	})
	return out, err
}

// RecordAttempt saves an attempt and ends or reschedules the delivery.
func (db *DB) RecordAttempt(ctx context.Context, d *slipway.Delivery, r *slipway.HookResult, done bool, retryAt time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		hdr, _ := json.Marshal(r.RequestHeaders)
		now := micros(db.Now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO hook_results (id, hook_id, delivery_id, event, attempt, request_headers, status_code, duration_us, error, created_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, newID(), d.HookID, d.ID, d.Event, r.Attempt, string(hdr), r.StatusCode, r.Duration.Microseconds(), r.Error, now); err != nil {
			return err
		}
		status, next := "pending", micros(retryAt)
		switch {
		case done:
			status = "delivered"
		case retryAt.IsZero():
			status = "failed"
		}
		_, err := tx.ExecContext(ctx, `UPDATE hook_deliveries SET status = $1, attempts = $2, next_at = $3, updated_at = $4 WHERE id = $5`, status, r.Attempt, next, now, d.ID)
		return err
	})
}

// ListAudits lists the app's audit trail, newest first.
func (db *DB) ListAudits(ctx context.Context, appKey string, limit int) ([]*slipway.Audit, error) {
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := db.r.QueryContext(ctx, `SELECT id, app_id, app_key, action, detail, user_id, user_email, created_at FROM audits
		WHERE ($1 = '' OR app_key = $1 OR app_id = $1) ORDER BY seq DESC LIMIT `+strconv.Itoa(limit), appKey)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*slipway.Audit{}
	for rows.Next() {
		var a slipway.Audit
		var c int64
		if err := rows.Scan(&a.ID, &a.AppID, &a.AppKey, &a.Action, &a.Detail, &a.UserID, &a.UserEmail, &c); err != nil {
			return nil, err
		}
		a.CreatedAt = fromMicros(c)
		out = append(out, &a)
	}
	return out, rows.Err()
}
