package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/slipway/slipway"
)

// AppStrategy returns the strategy the app's releases follow: the rolling
// restart unless one was set. ENotFound for an unknown app.
func (db *DB) AppStrategy(ctx context.Context, appID string) (*slipway.Strategy, error) {
	if _, err := db.findApp(ctx, db.r, "", appID); err != nil {
		return nil, err
	}
	var s slipway.Strategy
	if err := appStrategy(ctx, db.r, appID, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

func appStrategy(ctx context.Context, q querier, appID string, s *slipway.Strategy) error {
	var text string
	err := q.QueryRowContext(ctx, `SELECT strategy FROM app_strategies WHERE app_id = $1`, appID).Scan(&text)
	if errors.Is(err, sql.ErrNoRows) {
		*s = slipway.Strategy{Type: slipway.StrategyRolling}
		return nil
	}
	if err != nil {
		return err
	}
	return readStrategy(text, s)
}

// SetAppStrategy validates s and makes it the strategy of the app's
// releases from the next one on, audited. EUnprocessable naming the field
// for a bad strategy; ENotFound for an unknown app.
func (db *DB) SetAppStrategy(ctx context.Context, appID string, s *slipway.Strategy) error {
	if err := s.Validate(); err != nil {
		return err
	}
	text, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		app, err := db.findApp(ctx, tx, "", appID)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO app_strategies (app_id, strategy, updated_at) VALUES ($1, $2, $3)
			ON CONFLICT (app_id) DO UPDATE SET strategy = excluded.strategy, updated_at = excluded.updated_at`, appID, string(text), micros(db.Now()))
		if err != nil {
			return err
		}
		return db.audit(ctx, tx, app, "release-strategy.update", "Release strategy set to "+s.Type)
	})
}

// releaseStrategy is the strategy text a new release records: the app's,
// except that rollbacks roll unless the strategy says they follow it;
// "" for the rolling restart.
func releaseStrategy(ctx context.Context, tx *sql.Tx, appID, trigger string) (string, error) {
	var s slipway.Strategy
	if err := appStrategy(ctx, tx, appID, &s); err != nil {
		return "", err
	}
	if !s.Gated() || trigger == slipway.TriggerRollback && s.Rollbacks != "strategy" {
		return "", nil
	}
	text, err := json.Marshal(s)
	return string(text), err
}

func readStrategy(text string, s *slipway.Strategy) error {
	if text == "" {
		*s = slipway.Strategy{Type: slipway.StrategyRolling}
		return nil
	}
	return json.Unmarshal([]byte(text), s)
}

// Rollout returns the stored state of the release's gated rollout;
// ENotFound when it has not begun.
func (db *DB) Rollout(ctx context.Context, releaseID string) (*slipway.Rollout, error) {
	return rolloutOf(ctx, db.w, releaseID)
}

func rolloutOf(ctx context.Context, q querier, releaseID string) (*slipway.Rollout, error) {
	var text string
	err := q.QueryRowContext(ctx, `SELECT state FROM rollouts WHERE release_id = $1`, releaseID).Scan(&text)
	if err != nil {
		return nil, notFound(err, "Release %s has no rollout.", releaseID)
	}
	var st slipway.Rollout
	if err := json.Unmarshal([]byte(text), &st); err != nil {
		return nil, err
	}
	st.ReleaseID = releaseID
	return &st, nil
}

// SaveRollout stores the state of a release's rollout, keeping an action
// a user asked for meanwhile (UpdateRollout wrote it) unless st carries
// one out: the engine passes the state it planned from in from.
func (db *DB) SaveRollout(ctx context.Context, st *slipway.Rollout) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		cur, err := rolloutOf(ctx, tx, st.ReleaseID)
		if err != nil && slipway.ErrorCode(err) != slipway.ENotFound {
			return err
		}
		out := *st
		if cur != nil && cur.Seq != st.Seq {
			// A user acted after the engine read the state: keep the
			// action for the next plan.
			out.Request, out.By, out.Held = cur.Request, cur.By, cur.Held
		}
		out.Seq = st.Seq + 1
		if cur != nil {
			out.Seq = max(out.Seq, cur.Seq+1)
		}
		*st = out
		return putRollout(ctx, tx, db.Now(), &out)
	})
}

// UpdateRollout changes the stored state of a release's rollout with fn,
// in one transaction. ENotFound when it has not begun; fn's error as is.
func (db *DB) UpdateRollout(ctx context.Context, releaseID string, fn func(*slipway.Rollout) error) (*slipway.Rollout, error) {
	var st *slipway.Rollout
	err := db.tx(ctx, func(tx *sql.Tx) error {
		// Take the release's row lock first, so two actions queue.
		if _, err := tx.ExecContext(ctx, `UPDATE rollouts SET updated_at = updated_at WHERE release_id = $1`, releaseID); err != nil {
			return err
		}
		var err error
		if st, err = rolloutOf(ctx, tx, releaseID); err != nil {
			return err
		}
		if err := fn(st); err != nil {
			return err
		}
		st.Seq++
		return putRollout(ctx, tx, db.Now(), st)
	})
	return st, err
}

func putRollout(ctx context.Context, tx *sql.Tx, now time.Time, st *slipway.Rollout) error {
	text, err := json.Marshal(st)
	if err != nil {
		return err
	}
	var scaleDown *int64
	if st.ScaleDownAt != nil {
		at := micros(*st.ScaleDownAt)
		scaleDown = &at
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO rollouts (release_id, app_id, state, scale_down_at, updated_at)
		VALUES ($1, (SELECT app_id FROM releases WHERE id = $1), $2, $3, $4)
		ON CONFLICT (release_id) DO UPDATE SET state = excluded.state, scale_down_at = excluded.scale_down_at, updated_at = excluded.updated_at`,
		st.ReleaseID, string(text), scaleDown, micros(now))
	return err
}

// PendingScaleDown returns the rollout of the app whose blue-green switch
// left the old release's dynos running (ScaleDownAt is set); ENotFound
// when none waits.
func (db *DB) PendingScaleDown(ctx context.Context, appID string) (*slipway.Rollout, error) {
	var id string
	err := db.w.QueryRowContext(ctx, `SELECT release_id FROM rollouts WHERE app_id = $1 AND scale_down_at IS NOT NULL
		ORDER BY scale_down_at LIMIT 1`, appID).Scan(&id)
	if err != nil {
		return nil, notFound(err, "The app has no dynos waiting to scale down.")
	}
	return rolloutOf(ctx, db.w, id)
}

// RecordReleaseAction audits a user's action on a rollout and sends event
// (when not "") to the app's hooks, in one transaction.
func (db *DB) RecordReleaseAction(ctx context.Context, app *slipway.App, r *slipway.Release, action, event string) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if event != "" {
			data, err := releaseEventData(ctx, tx, r)
			if err != nil {
				return err
			}
			// "action" is the event in every payload; the user's action
			// on the rollout is rollout_action.
			data["rollout_action"] = action
			if err := db.emit(ctx, tx, app, event, data); err != nil {
				return err
			}
		}
		return db.audit(ctx, tx, app, "release."+action, fmt.Sprintf("v%d: %s", r.Version, action))
	})
}
