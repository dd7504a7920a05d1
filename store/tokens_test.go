package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/store"
)

func TestStore_Tokens(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme := &slipway.Organization{Name: "acme"}
		if err := db.CreateOrganization(ctx, acme); err != nil {
			t.Fatal(err)
		}
		secret, err := slipway.NewTokenSecret()
		if err != nil {
			t.Fatal(err)
		}
		tok := &slipway.Token{OrgID: acme.ID, Description: "ci"}
		if err := db.CreateToken(ctx, tok, secret); err != nil {
			t.Fatal(err)
		}
		got, err := db.FindToken(ctx, secret)
		if err != nil || got.ID != tok.ID || got.OrgID != acme.ID || got.OrgName != "acme" || got.Description != "ci" {
			t.Fatalf("FindToken = %+v, %v", got, err)
		}
		for _, wrong := range []string{"", secret + "x", strings.ToUpper(secret), tok.ID} {
			_, err := db.FindToken(ctx, wrong)
			wantCode(t, err, slipway.ENotFound)
		}
		list, err := db.ListTokens(ctx)
		if err != nil || len(list) != 1 || list[0].ID != tok.ID || strings.Contains(fmt.Sprintf("%+v", list[0]), secret) {
			t.Fatalf("ListTokens = %+v, %v", list, err)
		}
		if err := db.DeleteToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		_, err = db.FindToken(ctx, secret)
		wantCode(t, err, slipway.ENotFound) // revoked at once
		wantCode(t, db.DeleteToken(ctx, tok.ID), slipway.ENotFound)
	})
}

// TestStore_Audits records who changed what in the transaction of each
// change, lists it newest first, and keeps it after the app is deleted.
func TestStore_Audits(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := slipway.WithActor(context.Background(), slipway.Actor{ID: "u-1", Email: "ops@example.com"})
		a := mustApp(t, db, "audited")
		b := mustApp(t, db, "quiet")
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, ConfigChange: map[string]*string{"K": ptr("secret-value")}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: mustSlug(t, db, a.ID), Trigger: slipway.TriggerDeploy}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.UpsertFormations(ctx, a.ID, []slipway.FormationChange{{Type: "web", Quantity: ptr(2)}}); err != nil {
			t.Fatal(err)
		}
		// A refused change leaves no entry.
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: "latest", RollbackTo: "v9"}); err == nil {
			t.Fatal("rollback to v9 was accepted")
		}
		if _, err := db.CreateRelease(context.Background(), slipway.NewRelease{AppID: b.ID, ConfigChange: map[string]*string{"X": ptr("1")}}); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteApp(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		want := []string{"app.destroy", "formation.change", "release.deploy", "config.change"}
		for _, ref := range []string{"audited-default", a.ID} {
			as, err := db.ListAudits(ctx, ref, 0)
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range as {
				actions = append(actions, e.Action)
				if e.UserID != "u-1" || e.UserEmail != "ops@example.com" || e.AppKey != "audited-default" || e.AppID != a.ID || e.CreatedAt.IsZero() {
					t.Fatalf("entry = %+v", e)
				}
				if strings.Contains(e.Detail, "secret-value") {
					t.Fatalf("an audit entry holds a config value: %+v", e)
				}
			}
			if strings.Join(actions, " ") != strings.Join(want, " ") {
				t.Fatalf("ListAudits(%s) = %v, want %v", ref, actions, want)
			}
		}
		all, err := db.ListAudits(ctx, "", 0)
		if err != nil || len(all) != len(want)+1 || all[0].Action != "app.destroy" || all[len(all)-1].AppKey != "audited-default" {
			t.Fatalf("ListAudits(all) = %+v, %v", all, err)
		}
		if quiet, _ := db.ListAudits(ctx, "quiet-default", 0); len(quiet) != 1 || quiet[0].UserID != "" {
			t.Fatalf("a change by the system = %+v", quiet)
		}
		if two, _ := db.ListAudits(ctx, "", 2); len(two) != 2 || two[0].Action != "app.destroy" {
			t.Fatalf("limit 2 = %+v", two)
		}
	})
}
