package store

import (
	"context"
	"database/sql"
	"fmt"
	"sort"
	"strings"

	"github.com/slipway/slipway"
)

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
		desc := fmt.Sprintf("Promotion of %s v%d", src.Key(), rel.Version)
		relID, err := db.createRelease(ctx, tx, slipway.NewRelease{
			AppID: t.ID, SlugID: rel.SlugID, Trigger: slipway.TriggerPromotion, Promotion: true, Config: cfg,
			Description: desc, UserID: np.UserID, UserEmail: np.UserEmail,
		})
		if err != nil {
			return "", err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO promotion_targets (id, promotion_id, app_id, release_id) VALUES ($1, $2, $3, $4)`, newID(), id, t.ID, relID); err != nil {
			return "", err
		}
		// Webhook-Event-Payloads.md: the source as promoted_from, the
		// build promoted and the target's new release; promotion is
		// Slipway's own.
		if err := db.emit(ctx, tx, t, slipway.EventPipelinePromoted, map[string]any{
			"promoted_from": map[string]any{"app": map[string]string{"id": src.ID, "name": src.Name}, "space": map[string]string{"name": src.SpaceName}},
			"build":         map[string]string{"id": rel.SlugID},
			"release":       map[string]string{"id": relID, "status": slipway.ReleaseQueued, "description": desc},
			"promotion": map[string]any{
				"id": id, "pipeline": map[string]string{"id": pl.ID, "name": pl.Name}, "source": map[string]any{"app": map[string]string{"id": src.ID, "name": src.Name}, "release": map[string]any{"id": rel.ID, "version": rel.Version}},
				"release": map[string]string{"id": relID},
			},
		}); err != nil {
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
	// A deleted app leaves its key empty.
	err := db.w.QueryRowContext(ctx, `SELECT pr.id, pr.pipeline_id, p.name, pr.source_app_id, COALESCE(a.name || '-' || s.name, ''), pr.source_release_id, pr.created_at, pr.updated_at
		FROM promotions pr JOIN pipelines p ON p.id = pr.pipeline_id LEFT JOIN apps a ON a.id = pr.source_app_id LEFT JOIN spaces s ON s.id = a.space_id
		WHERE pr.id = $1`, id).
		Scan(&p.ID, &p.PipelineID, &p.PipelineName, &p.SourceAppID, &p.SourceAppKey, &p.SourceReleaseID, &c, &u)
	if err != nil {
		return nil, notFound(err, "Pipeline promotion %q was not found.", id)
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(c), fromMicros(u)
	rows, err := db.w.QueryContext(ctx, `SELECT t.id, t.app_id, COALESCE(a.name || '-' || s.name, ''), t.release_id, COALESCE(r.status, 'unknown'), COALESCE(r.error, '')
		FROM promotion_targets t LEFT JOIN releases r ON r.id = t.release_id
		LEFT JOIN apps a ON a.id = t.app_id LEFT JOIN spaces s ON s.id = a.space_id
		WHERE t.promotion_id = $1 ORDER BY t.id`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	p.Status = slipway.ReleaseSucceeded
	for rows.Next() {
		var t slipway.PromotionTarget
		if err := rows.Scan(&t.ID, &t.AppID, &t.AppKey, &t.ReleaseID, &t.Status, &t.Error); err != nil {
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
