package store_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/store"
)

// payloadType is the JSON type of a decoded value.
func payloadType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	}
	return "?"
}

// payloadAt follows a dotted path ("release.id", "changes.0.name").
func payloadAt(v any, path string) (any, bool) {
	for _, k := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			var ok bool
			if v, ok = c[k]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i >= len(c) {
				return nil, false
			}
			v = c[i]
		default:
			return nil, false
		}
	}
	return v, true
}

// TestStore_EventPayloads_FollowTheReference sends every event Slipway
// sends and holds each payload to Webhook-Event-Payloads.md: the app by
// its bare name plus space, action equal to the event, and each event's
// documented fields with their JSON types. No payload carries a config
// value.
func TestStore_EventPayloads_FollowTheReference(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		src, dst := mustApp(t, db, "paysrc"), mustApp(t, db, "paydst")
		for _, a := range []*slipway.App{src, dst} {
			if err := db.CreateHook(ctx, &slipway.Hook{AppID: a.ID, URL: "https://example.com/h", Events: slipway.HookEvents(), Secret: "k", Active: true}); err != nil {
				t.Fatal(err)
			}
		}
		b := &slipway.Build{AppID: src.ID, Repo: "https://github.com/o/r", SHA: "abc123", Branch: "main"}
		if err := db.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{ProcessTypes: map[string]string{"web": "./web"}}}); err != nil {
			t.Fatal(err)
		}
		const value = "config-value-never-sent"
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: src.ID, ConfigChange: map[string]*string{"SECRET_KEY": ptr(value)}, Trigger: slipway.TriggerConfig}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: src.ID, ConfigChange: map[string]*string{"SECRET_KEY": ptr(value + "2"), "OTHER": ptr(value), "GONE": nil}, Trigger: slipway.TriggerConfig}); err != nil {
			t.Fatal(err)
		}
		rel, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: src.ID, SlugID: b.ID, Trigger: slipway.TriggerDeploy})
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range []string{slipway.ReleasePending, slipway.ReleaseSucceeded} {
			if err := db.SetReleaseStatus(ctx, rel.ID, st, ""); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.EmitReleased(ctx, rel.ID, "web"); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordReleaseAction(ctx, src, rel, "pause", slipway.EventReleasePaused); err != nil {
			t.Fatal(err)
		}
		bad, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: src.ID, SlugID: b.ID, Trigger: slipway.TriggerDeploy})
		if err != nil {
			t.Fatal(err)
		}
		db.SetReleaseStatus(ctx, bad.ID, slipway.ReleasePending, "")
		if err := db.FinishRelease(ctx, bad.ID, slipway.ReleaseFailed, "web crashed", &slipway.Failure{Phase: slipway.FailCrash, Dyno: "web.1", ExitCode: slipway.ExitStatus(1), Output: []string{"boom"}}); err != nil {
			t.Fatal(err)
		}
		one := 2
		if _, err := db.UpsertFormations(ctx, src.ID, []slipway.FormationChange{{Type: "worker", Quantity: &one}}); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteFormation(ctx, src.ID, "worker"); err != nil {
			t.Fatal(err)
		}
		pl := &slipway.Pipeline{Name: "paypipe"}
		if err := db.CreatePipeline(ctx, pl); err != nil {
			t.Fatal(err)
		}
		for _, c := range []*slipway.Coupling{{AppID: src.ID, PipelineID: pl.ID, Stage: "development"}, {AppID: dst.ID, PipelineID: pl.ID, Stage: "staging"}} {
			if err := db.CreateCoupling(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := db.CreatePromotion(ctx, slipway.NewPromotion{Pipeline: pl.ID, SourceApp: src.ID, Release: rel.ID}); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteApp(ctx, src.ID); err != nil {
			t.Fatal(err)
		}

		got := map[string][]any{}
		db.Now = func() time.Time { return time.Now().Add(time.Hour) }
		defer func() { db.Now = time.Now }()
		dels, err := db.ClaimDeliveries(ctx, 100, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range dels {
			if strings.Contains(string(d.Payload), value) {
				t.Errorf("%s payload carries a config value: %s", d.Event, d.Payload)
			}
			var v any
			if err := json.Unmarshal(d.Payload, &v); err != nil {
				t.Fatal(err)
			}
			got[d.Event] = append(got[d.Event], v)
		}
		common := map[string]string{"action": "string", "app.id": "string", "app.name": "string", "space.name": "string", "key": "string"}
		want := map[string]map[string]string{
			slipway.EventBuild: {"build.id": "string", "build.result": "string", "build.created_at": "string", "build.repo": "string",
				"build.branch": "string", "build.commit": "string"},
			slipway.EventRelease: {"release.id": "string", "release.diff_summary": "string", "release.result": "string", "release.created_at": "string", "release.version": "number",
				"release.description": "string", "build.id": "string", "build.result": "string", "build.repo": "string", "build.commit": "string", "build.branch": "string"},
			slipway.EventReleased: {"dyno.type": "string", "release.id": "string", "release.created_at": "string", "release.updated_at": "string",
				"release.version": "number", "slug.id": "string", "slug.image": "string", "slug.source_blob.checksum": "string",
				"slug.source_blob.commit": "string", "slug.source_blob.repo": "string", "slug.source_blob.branch": "string",
				"slug.source_blob.author": "string", "slug.source_blob.message": "string", "slug.source_blob.version": "string", "released_at": "string"},
			slipway.EventReleaseFailed: {"release.id": "string", "release.result": "string", "release.version": "number", "build.id": "string",
				"release.failure.phase": "string", "release.failure.dyno": "string", "release.failure.exit_code": "number", "release.failure.output": "array"},
			slipway.EventReleasePaused: {"release.id": "string", "release.result": "string", "build.id": "string", "rollout_action": "string"},
			slipway.EventFormationChange: {"change": "string", "changes.0.type": "string", "changes.0.quantity": "number", "changes.0.size": "string",
				"changes.0.port": "number", "changes.0.command": "string", "formation": "array"},
			slipway.EventConfigChange: {"changes.0.type": "string", "changes.0.name": "string"},
			slipway.EventPipelinePromoted: {"promoted_from.app.id": "string", "promoted_from.app.name": "string", "promoted_from.space.name": "string",
				"build.id": "string", "release.id": "string", "release.status": "string", "release.description": "string", "promotion.id": "string"},
			slipway.EventDestroy: {},
		}
		for event, fields := range want {
			if len(got[event]) == 0 {
				t.Errorf("no %s payload", event)
				continue
			}
			for _, p := range got[event] {
				for path, typ := range common {
					if v, ok := payloadAt(p, path); !ok || payloadType(v) != typ {
						t.Errorf("%s: %s = %v, want a %s", event, path, v, typ)
					}
				}
				for path, typ := range fields {
					if v, ok := payloadAt(p, path); !ok || payloadType(v) != typ {
						t.Errorf("%s: %s = %v, want a %s", event, path, v, typ)
					}
				}
				if a, _ := payloadAt(p, "action"); a != event {
					t.Errorf("%s: action = %v", event, a)
				}
			}
		}
		// Values that say what happened.
		at := func(event string, i int, path string) any {
			if len(got[event]) <= i {
				return nil
			}
			v, _ := payloadAt(got[event][i], path)
			return v
		}
		if at(slipway.EventBuild, 0, "app.name") != "paysrc" || at(slipway.EventBuild, 0, "space.name") != "default" || at(slipway.EventBuild, 0, "build.result") != "succeeded" {
			t.Errorf("build payload = %v", got[slipway.EventBuild])
		}
		var changes []string
		for _, p := range got[slipway.EventConfigChange] {
			cs, _ := payloadAt(p, "changes")
			for _, c := range cs.([]any) {
				m := c.(map[string]any)
				changes = append(changes, m["type"].(string)+" "+m["name"].(string))
			}
			if _, ok := payloadAt(p, "config_vars"); ok {
				t.Errorf("config_change carries config_vars: %v", p)
			}
		}
		if strings.Join(changes, ", ") != "create SECRET_KEY, create OTHER, update SECRET_KEY" {
			t.Errorf("config changes = %q", changes)
		}
		if at(slipway.EventFormationChange, 0, "change") != "create" || at(slipway.EventFormationChange, 1, "change") != "delete" ||
			at(slipway.EventFormationChange, 1, "changes.0.type") != "worker" {
			t.Errorf("formation_change payloads = %v", got[slipway.EventFormationChange])
		}
		if at(slipway.EventReleased, 0, "dyno.type") != "web" || at(slipway.EventReleased, 0, "slug.id") != b.ID || at(slipway.EventReleased, 0, "slug.source_blob.commit") != "abc123" {
			t.Errorf("released payload = %v", got[slipway.EventReleased])
		}
		if at(slipway.EventPipelinePromoted, 0, "app.name") != "paydst" || at(slipway.EventPipelinePromoted, 0, "promoted_from.app.name") != "paysrc" ||
			at(slipway.EventPipelinePromoted, 0, "build.id") != b.ID || at(slipway.EventPipelinePromoted, 0, "release.status") != "queued" {
			t.Errorf("pipeline_promotion payload = %v", got[slipway.EventPipelinePromoted])
		}
		if at(slipway.EventReleasePaused, 0, "rollout_action") != "pause" {
			t.Errorf("release_paused payload = %v", got[slipway.EventReleasePaused])
		}
		if at(slipway.EventReleaseFailed, 0, "release.result") != "failed" || at(slipway.EventReleaseFailed, 0, "release.error") != "web crashed" ||
			at(slipway.EventReleaseFailed, 0, "release.failure.phase") != "crash" || at(slipway.EventReleaseFailed, 0, "release.failure.output.0") != "boom" {
			t.Errorf("release_failed payload = %v", got[slipway.EventReleaseFailed])
		}
	})
}
