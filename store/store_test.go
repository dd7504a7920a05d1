package store_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/internal/pgtest"
	"github.com/slipway/slipway/store"
)

// backends are the names of the backends every store test runs on.
var backends = []string{"sqlite", "postgres"}

// backendDSN returns the address of a fresh database of backend: a SQLite
// file, or a PostgreSQL schema of its own (skipping t, or failing it in
// CI, when SLIPWAY_TEST_DATABASE_URL is unset; see pgtest.DSN).
func backendDSN(t testing.TB, backend string) string {
	t.Helper()
	if backend == "postgres" {
		return pgtest.DSN(t)
	}
	return filepath.Join(t.TempDir(), "slipway.db")
}

// mustOpen opens a store on dsn, closed when the test ends.
func mustOpen(t testing.TB, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// each runs fn in one subtest per backend, on a fresh store.
func each(t *testing.T, fn func(t *testing.T, db *store.DB)) {
	for _, name := range backends {
		t.Run(name, func(t *testing.T) { fn(t, mustOpen(t, backendDSN(t, name))) })
	}
}

func mustApp(t testing.TB, db *store.DB, name string) *slipway.App {
	t.Helper()
	a := &slipway.App{Name: name, OrgName: "default", SpaceName: "default"}
	if err := db.CreateApp(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	return a
}

// mustSlug records a succeeded build and returns its id.
func mustSlug(t testing.TB, db *store.DB, appID string) string {
	t.Helper()
	ctx := context.Background()
	b := &slipway.Build{AppID: appID}
	if err := db.CreateBuild(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildSucceeded, Slug: &slipway.Slug{ProcessTypes: map[string]string{"web": "./web"}}}); err != nil {
		t.Fatal(err)
	}
	return b.ID
}

func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := slipway.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
}

func TestStore_Apps(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "hello")
		if a.Key() != "hello-default" {
			t.Fatalf("key = %q", a.Key())
		}
		wantCode(t, db.CreateApp(ctx, &slipway.App{Name: "hello", OrgName: "default", SpaceName: "default"}), slipway.EConflict)
		wantCode(t, db.CreateApp(ctx, &slipway.App{Name: "Bad_Name", OrgName: "default", SpaceName: "default"}), slipway.EUnprocessable)
		wantCode(t, db.CreateApp(ctx, &slipway.App{Name: "other", OrgName: "nope", SpaceName: "default"}), slipway.EUnprocessable)
		for _, k := range []string{a.ID, "hello-default"} {
			got, err := db.FindApp(ctx, k)
			if err != nil || got.ID != a.ID {
				t.Fatalf("FindApp(%q) = %v, %v", k, got, err)
			}
		}
		_, err := db.FindApp(ctx, "nope-default")
		wantCode(t, err, slipway.ENotFound)
		on := true
		got, err := db.UpdateApp(ctx, a.ID, slipway.AppUpdate{AutoRelease: &on})
		if err != nil || !got.AutoRelease {
			t.Fatalf("UpdateApp = %+v, %v", got, err)
		}
		if err := db.DeleteApp(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.DeleteApp(ctx, a.ID), slipway.ENotFound)
	})
}

func TestStore_CreateRelease_Errors(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "errs")
		other := mustApp(t, db, "other")
		otherSlug := mustSlug(t, db, other.ID)
		pending := &slipway.Build{AppID: a.ID}
		if err := db.CreateBuild(ctx, pending); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			nr   slipway.NewRelease
			code string
		}{
			{"slug not a uuid", slipway.NewRelease{SlugID: "abc"}, slipway.EUnprocessable},
			{"unknown slug", slipway.NewRelease{SlugID: uuid.NewString()}, slipway.EConflict},
			{"slug of another app", slipway.NewRelease{SlugID: otherSlug}, slipway.EConflict},
			{"slug still building", slipway.NewRelease{SlugID: pending.ID}, slipway.EConflict},
			{"latest with no build", slipway.NewRelease{SlugID: "latest"}, slipway.EConflict},
			{"unknown rollback", slipway.NewRelease{RollbackTo: uuid.NewString()}, slipway.ENotFound},
			{"rollback to missing version", slipway.NewRelease{RollbackTo: "v9"}, slipway.ENotFound},
			{"reserved config key", slipway.NewRelease{ConfigChange: map[string]*string{"PORT": ptr("1")}}, slipway.EUnprocessable},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				tt.nr.AppID = a.ID
				tt.nr.Trigger = slipway.TriggerDeploy
				_, err := db.CreateRelease(ctx, tt.nr)
				wantCode(t, err, tt.code)
			})
		}
		// Nothing was written: the next release is v1.
		r, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: mustSlug(t, db, a.ID), Trigger: slipway.TriggerDeploy})
		if err != nil || r.Version != 1 {
			t.Fatalf("release = %+v, %v; want v1", r, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

// TestStore_FormationLimits_ConcurrentScalesInOneOrganization scales many
// apps of one organization at once: the organization's limit holds, as
// many changes succeed as fit, and every other one is a 422.
func TestStore_FormationLimits_ConcurrentScalesInOneOrganization(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		db.Limits = slipway.DynoLimits{PerApp: 10, PerOrg: 15}
		const n = 20
		apps := make([]*slipway.App, n)
		for i := range apps {
			apps[i] = mustApp(t, db, fmt.Sprintf("lim%d", i))
		}
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for _, a := range apps {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := db.UpsertFormations(ctx, a.ID, []slipway.FormationChange{{Type: "web", Quantity: ptr(10)}})
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			if err == nil {
				ok++
			} else {
				wantCode(t, err, slipway.EUnprocessable)
			}
		}
		total := 0
		for _, a := range apps {
			fs, _ := db.ListFormations(ctx, a.ID)
			for _, f := range fs {
				total += f.Quantity
			}
		}
		if ok != 1 || total != 10 {
			t.Fatalf("%d scales succeeded, %d dynos in all; want 1 and 10", ok, total)
		}
		// The first release of an app past the limit cannot create web×1.
		a := mustApp(t, db, "late")
		db.Limits.PerOrg = 10
		wantCode(t, db.EnsureFormations(ctx, a.ID, []string{"web"}), slipway.EUnprocessable)
		if fs, _ := db.ListFormations(ctx, a.ID); len(fs) != 0 {
			t.Fatalf("formations written by a refused EnsureFormations: %+v", fs)
		}
	})
}

func TestStore_Versions_ConcurrentCreates(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "conc")
		slug := mustSlug(t, db, a.ID)
		const n = 50
		var wg sync.WaitGroup
		versions := make(chan int, n)
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slug, Trigger: slipway.TriggerDeploy})
				if err != nil {
					errs <- err
					return
				}
				versions <- r.Version
			}()
		}
		wg.Wait()
		close(versions)
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		var got []int
		for v := range versions {
			got = append(got, v)
		}
		sort.Ints(got)
		for i, v := range got {
			if v != i+1 {
				t.Fatalf("versions = %v, want 1..%d", got, n)
			}
		}
	})
}

func TestStore_Release_CurrentAndState(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "cur")
		slug := mustSlug(t, db, a.ID)
		var rels []*slipway.Release
		for i := 0; i < 3; i++ {
			r, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slug, Trigger: slipway.TriggerDeploy})
			if err != nil {
				t.Fatal(err)
			}
			rels = append(rels, r)
		}
		if r, _ := db.FindRelease(ctx, a.ID, "v1"); r.Current || r.State != slipway.StateSuccess || r.Status != slipway.ReleaseQueued {
			t.Fatalf("fresh release = %+v", r)
		}
		finish := func(r *slipway.Release, status string) {
			t.Helper()
			if err := db.SetReleaseStatus(ctx, r.ID, slipway.ReleasePending, ""); err != nil {
				t.Fatal(err)
			}
			if err := db.SetReleaseStatus(ctx, r.ID, status, ""); err != nil {
				t.Fatal(err)
			}
		}
		finish(rels[0], slipway.ReleaseSucceeded)
		finish(rels[1], slipway.ReleaseSucceeded)
		finish(rels[2], slipway.ReleaseFailed)
		wantCode(t, db.SetReleaseStatus(ctx, rels[2].ID, slipway.ReleaseSucceeded, ""), slipway.EConflict)
		var current []int
		err := db.ListReleases(ctx, a.ID, slipway.Page{}, func(r *slipway.Release) error {
			if r.Current {
				current = append(current, r.Version)
			}
			return nil
		})
		if err != nil || fmt.Sprint(current) != "[2]" {
			t.Fatalf("current = %v, %v; want [2]", current, err)
		}
		cur, err := db.CurrentRelease(ctx, a.ID)
		if err != nil || cur.Version != 2 {
			t.Fatalf("CurrentRelease = %+v, %v", cur, err)
		}
		// State combines checks: error > failure > pending > success.
		steps := []struct{ ctx, state, want string }{
			{"ci/tests", slipway.StateSuccess, slipway.StateSuccess},
			{"ci/lint1", slipway.StatePending, slipway.StatePending},
			{"ci/secur", slipway.StateFailure, slipway.StateFailure},
			{"ci/other", slipway.StateError, slipway.StateError},
		}
		for _, s := range steps {
			st := &slipway.ReleaseStatus{ReleaseID: cur.ID, State: s.state, Name: "check " + s.ctx, Context: s.ctx}
			if err := db.CreateReleaseStatus(ctx, st); err != nil {
				t.Fatal(err)
			}
			r, _ := db.FindRelease(ctx, a.ID, cur.ID)
			if r.State != s.want {
				t.Fatalf("after %s=%s state = %s, want %s", s.ctx, s.state, r.State, s.want)
			}
		}
		dup := &slipway.ReleaseStatus{ReleaseID: cur.ID, State: "success", Name: "again", Context: "ci/tests"}
		wantCode(t, db.CreateReleaseStatus(ctx, dup), slipway.EUnprocessable)
	})
}

func TestStore_Rollback_RestoresConfig(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "rb")
		slug1 := mustSlug(t, db, a.ID)
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, ConfigChange: map[string]*string{"COLOR": ptr("blue")}}); err != nil {
			t.Fatal(err)
		}
		r1, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slug1, Trigger: slipway.TriggerDeploy})
		if err != nil || r1.Config["COLOR"] != "blue" {
			t.Fatalf("r1 = %+v, %v", r1, err)
		}
		db.SetReleaseStatus(ctx, r1.ID, slipway.ReleasePending, "")
		db.SetReleaseStatus(ctx, r1.ID, slipway.ReleaseSucceeded, "")
		r2, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, ConfigChange: map[string]*string{"COLOR": ptr("red"), "NEW": ptr("1")}, Trigger: slipway.TriggerConfig})
		if err != nil || r2.Config["COLOR"] != "red" || r2.SlugID != slug1 || r2.Description != "Set COLOR, NEW config vars" {
			t.Fatalf("r2 = %+v, %v", r2, err)
		}
		r3, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, RollbackTo: "v1", Trigger: slipway.TriggerRollback})
		if err != nil {
			t.Fatal(err)
		}
		if r3.Version != 3 || r3.SlugID != slug1 || r3.Config["COLOR"] != "blue" || r3.Config["NEW"] != "" || r3.Description != "Rollback to v1" {
			t.Fatalf("rollback = %+v", r3)
		}
		cfg, _ := db.ConfigVars(ctx, a.ID)
		if fmt.Sprint(cfg) != "map[COLOR:blue]" {
			t.Fatalf("config after rollback = %v", cfg)
		}
	})
}

func TestStore_ListReleases_Paging(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "page")
		slug := mustSlug(t, db, a.ID)
		for i := 0; i < 7; i++ {
			if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slug, Trigger: slipway.TriggerDeploy}); err != nil {
				t.Fatal(err)
			}
		}
		list := func(p slipway.Page) string {
			var vs []int
			if err := db.ListReleases(ctx, a.ID, p, func(r *slipway.Release) error { vs = append(vs, r.Version); return nil }); err != nil {
				t.Fatal(err)
			}
			return fmt.Sprint(vs)
		}
		cases := []struct {
			p    slipway.Page
			want string
		}{
			{slipway.Page{}, "[1 2 3 4 5 6 7]"},
			{slipway.Page{Max: 3}, "[1 2 3]"},
			{slipway.Page{Start: "3", StartExclusive: true, Max: 3}, "[4 5 6]"},
			{slipway.Page{Desc: true, Max: 2}, "[7 6]"},
			{slipway.Page{Desc: true, Start: "6", StartExclusive: true, Max: 2}, "[5 4]"},
		}
		for _, c := range cases {
			if got := list(c.p); got != c.want {
				t.Errorf("page %+v = %s, want %s", c.p, got, c.want)
			}
		}
	})
}

func TestStore_Formations(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "form")
		if err := db.EnsureFormations(ctx, a.ID, []string{"web", "worker", "release"}); err != nil {
			t.Fatal(err)
		}
		fs, _ := db.ListFormations(ctx, a.ID)
		if len(fs) != 2 || fs[0].Type != "web" || fs[0].Quantity != 1 || fs[1].Quantity != 0 {
			t.Fatalf("formations = %+v", fs)
		}
		_, err := db.UpsertFormations(ctx, a.ID, []slipway.FormationChange{{Type: "web", Quantity: ptr(3), Healthcheck: ptr("/health")}, {Type: "bad type"}})
		wantCode(t, err, slipway.EUnprocessable)
		fs, err = db.UpsertFormations(ctx, a.ID, []slipway.FormationChange{{Type: "web", Quantity: ptr(3), Healthcheck: ptr("/health")}})
		if err != nil || fs[0].Quantity != 3 || fs[0].Healthcheck != "/health" {
			t.Fatalf("formations = %+v, %v", fs, err)
		}
		wantCode(t, db.DeleteFormation(ctx, a.ID, "nope"), slipway.ENotFound)
		if err := db.DeleteFormation(ctx, a.ID, "worker"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestStore_Builds(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "builds")
		b := &slipway.Build{AppID: a.ID, SourceURL: "https://example.com/a.tgz"}
		if err := db.CreateBuild(ctx, b); err != nil {
			t.Fatal(err)
		}
		if err := db.StartBuild(ctx, b.ID, "s1"); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.StartBuild(ctx, b.ID, "s1"), slipway.EConflict)
		db.AppendBuildLines(ctx, b.ID, "Fetching", "Unpacked")
		if err := db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildFailed, Lines: []string{"failed: no Procfile"}}); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.FinishBuild(ctx, b.ID, slipway.BuildResult{Status: slipway.BuildFailed}), slipway.EConflict)
		lines, _ := db.BuildLines(ctx, b.ID)
		if strings.Join(lines, "|") != "Fetching|Unpacked|failed: no Procfile" {
			t.Fatalf("lines = %q", lines)
		}
		_, err := db.FindSlug(ctx, b.ID)
		wantCode(t, err, slipway.ENotFound)
		other := &slipway.Build{AppID: a.ID}
		db.CreateBuild(ctx, other)
		db.StartBuild(ctx, other.ID, "s2")
		un, _ := db.UnfinishedBuilds(ctx, "s1")
		if len(un) != 0 {
			t.Fatalf("unfinished = %v", un)
		}
	})
}

func TestStore_Leases(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "lease")
		now := time.Now()
		db.LeaseNow = func() time.Time { return now }
		defer func() { db.LeaseNow = nil }()
		steps := []struct {
			holder string
			want   bool
		}{{"s1", true}, {"s2", false}, {"s1", true}}
		for _, s := range steps {
			if ok, err := db.AcquireLease(ctx, a.ID, s.holder, 10*time.Second); err != nil || ok != s.want {
				t.Fatalf("%s acquire = %v, %v; want %v", s.holder, ok, err, s.want)
			}
		}
		now = now.Add(11 * time.Second) // s1 stopped renewing
		if ok, _ := db.AcquireLease(ctx, a.ID, "s2", 10*time.Second); !ok {
			t.Fatal("s2 could not take an expired lease")
		}
		db.ReleaseLease(ctx, a.ID, "s1") // not s1's any more: no effect
		if ok, _ := db.AcquireLease(ctx, a.ID, "s1", 10*time.Second); ok {
			t.Fatal("s1 took s2's lease")
		}
		db.ReleaseLease(ctx, a.ID, "s2")
		if ok, _ := db.AcquireLease(ctx, a.ID, "s1", 10*time.Second); !ok {
			t.Fatal("s1 could not take a released lease")
		}
	})
}

// TestStore_AppsToWork_LeavesOutAppsLeasedElsewhere: a server's sweep is
// offered the apps with work that it holds or nobody holds, and an app
// another server holds only once that lease has expired.
func TestStore_AppsToWork_LeavesOutAppsLeasedElsewhere(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		now := time.Now()
		db.LeaseNow = func() time.Time { return now }
		defer func() { db.LeaseNow = nil }()
		var ids []string
		for _, name := range []string{"mine", "theirs", "free"} {
			a := mustApp(t, db, "work"+name)
			if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: mustSlug(t, db, a.ID), Trigger: slipway.TriggerDeploy}); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, a.ID)
		}
		db.AcquireLease(ctx, ids[0], "s1", 10*time.Second)
		db.AcquireLease(ctx, ids[1], "s2", 10*time.Second)
		got := func() []string {
			t.Helper()
			out, err := db.AppsToWork(ctx, "s1")
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(out)
			return out
		}
		want := []string{ids[0], ids[2]}
		slices.Sort(want)
		if g := got(); !slices.Equal(g, want) {
			t.Fatalf("AppsToWork(s1) = %v; want %v (not s2's app)", g, want)
		}
		now = now.Add(11 * time.Second) // both leases expire
		want = slices.Clone(ids)
		slices.Sort(want)
		if g := got(); !slices.Equal(g, want) {
			t.Fatalf("after the leases expired, AppsToWork(s1) = %v; want %v", g, want)
		}
		if all, _ := db.AppsWithWork(ctx); len(all) != 3 {
			t.Fatalf("AppsWithWork = %v; want all three", all)
		}
	})
}

// TestStore_Leases_ByTheDatabasesClock has two servers whose clocks are
// an hour apart share one database: the lease one holds is neither taken
// by the server whose clock runs ahead nor born expired on the one whose
// clock runs behind, because both use the database's clock.
func TestStore_Leases_ByTheDatabasesClock(t *testing.T) {
	for _, backend := range backends {
		t.Run(backend, func(t *testing.T) {
			dsn := backendDSN(t, backend)
			ctx := context.Background()
			behind, ahead := mustOpen(t, dsn), mustOpen(t, dsn)
			behind.Now = func() time.Time { return time.Now().Add(-time.Hour) }
			ahead.Now = func() time.Time { return time.Now().Add(time.Hour) }
			a := mustApp(t, behind, "skewed")
			if ok, err := behind.AcquireLease(ctx, a.ID, "behind", 30*time.Second); !ok || err != nil {
				t.Fatalf("behind acquire = %v, %v", ok, err)
			}
			if ok, err := ahead.AcquireLease(ctx, a.ID, "ahead", 30*time.Second); ok || err != nil {
				t.Fatalf("the server an hour ahead took a live lease: %v, %v", ok, err)
			}
			if err := behind.ReleaseLease(ctx, a.ID, "behind"); err != nil {
				t.Fatal(err)
			}
			if ok, err := ahead.AcquireLease(ctx, a.ID, "ahead", 30*time.Second); !ok || err != nil {
				t.Fatalf("ahead acquire = %v, %v", ok, err)
			}
			if ok, err := behind.AcquireLease(ctx, a.ID, "behind", 30*time.Second); ok || err != nil {
				t.Fatalf("the server an hour behind took a live lease: %v, %v", ok, err)
			}
		})
	}
}

func TestStore_ConfigChange_FollowsTheWaitingRelease(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "follow")
		old, next := mustSlug(t, db, a.ID), mustSlug(t, db, a.ID)
		v1, _ := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: old, Trigger: slipway.TriggerDeploy})
		db.SetReleaseStatus(ctx, v1.ID, slipway.ReleasePending, "")
		db.SetReleaseStatus(ctx, v1.ID, slipway.ReleaseSucceeded, "")
		db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: next, Trigger: slipway.TriggerDeploy}) // v2 waits
		v3, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, ConfigChange: map[string]*string{"K": ptr("v")}, Trigger: slipway.TriggerConfig})
		if err != nil || v3.SlugID != next || v3.Config["K"] != "v" {
			t.Fatalf("config release = %+v, %v; want the waiting release's slug", v3, err)
		}
	})
}

func TestStore_ConcurrentConfigChanges_EachItsOwnReleaseInOrder(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "cfgs")
		slug := mustSlug(t, db, a.ID)
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slug, Trigger: slipway.TriggerDeploy}); err != nil {
			t.Fatal(err)
		}
		const n = 10
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				key := fmt.Sprintf("K%d", i)
				if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, ConfigChange: map[string]*string{key: ptr("v")}, Trigger: slipway.TriggerConfig}); err != nil {
					t.Error(err)
				}
			}(i)
		}
		wg.Wait()
		// Versions 2..n+1, and each release holds every change made before
		// it: the config grows by one key per version.
		var sizes []int
		db.ListReleases(ctx, a.ID, slipway.Page{}, func(r *slipway.Release) error {
			if r.Trigger == slipway.TriggerConfig {
				full, _ := db.FindRelease(ctx, a.ID, r.ID)
				sizes = append(sizes, len(full.Config))
			}
			return nil
		})
		if len(sizes) != n {
			t.Fatalf("%d config releases, want %d", len(sizes), n)
		}
		for i, s := range sizes {
			if s != i+1 {
				t.Fatalf("config sizes by version = %v, want 1..%d", sizes, n)
			}
		}
	})
}

func TestStore_AppUID(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		const lo, hi = 200000, 200003
		got := map[int]string{}
		for _, name := range []string{"uida", "uidb", "uidc"} {
			a := mustApp(t, db, name)
			uid, err := db.AppUID(ctx, a.ID, lo, hi)
			if err != nil {
				t.Fatalf("AppUID(%s): %v", name, err)
			}
			if uid < lo || uid > hi || got[uid] != "" {
				t.Fatalf("AppUID(%s) = %d: out of range or already %s's", name, uid, got[uid])
			}
			got[uid] = a.ID
			if again, err := db.AppUID(ctx, a.ID, lo, hi); err != nil || again != uid {
				t.Fatalf("AppUID(%s) again = %d, %v; want the same %d", name, again, err, uid)
			}
		}
		if uid, err := db.AppUID(ctx, mustApp(t, db, "uidd").ID, lo, hi); err != nil || uid != hi {
			t.Fatalf("last free uid = %d, %v; want %d", uid, err, hi)
		}
		_, err := db.AppUID(ctx, mustApp(t, db, "uide").ID, lo, hi)
		wantCode(t, err, slipway.EConflict)
	})
}

func TestStore_AppUID_Concurrent(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		ids := make([]string, 20)
		for i := range ids {
			ids[i] = mustApp(t, db, fmt.Sprintf("uidc%d", i)).ID
		}
		uids := make([]int, len(ids))
		var wg sync.WaitGroup
		for i, id := range ids {
			wg.Go(func() {
				uid, err := db.AppUID(ctx, id, 300000, 300999)
				if err != nil {
					t.Errorf("AppUID: %v", err)
				}
				uids[i] = uid
			})
		}
		wg.Wait()
		seen := map[int]bool{}
		for _, u := range uids {
			if seen[u] {
				t.Fatalf("uid %d given to two apps: %v", u, uids)
			}
			seen[u] = true
		}
	})
}

func TestStore_Spaces_OwnedAndShared(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		acme := &slipway.Organization{Name: "acme"}
		if err := db.CreateOrganization(ctx, acme); err != nil {
			t.Fatal(err)
		}
		owned := &slipway.Space{Name: "acme-prod", OrgName: "acme"}
		if err := db.CreateSpace(ctx, owned); err != nil {
			t.Fatal(err)
		}
		shared := &slipway.Space{Name: "shared"}
		if err := db.CreateSpace(ctx, shared); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.CreateSpace(ctx, &slipway.Space{Name: "ghost", OrgName: "nope"}), slipway.EUnprocessable)
		for name, want := range map[string]string{"acme-prod": acme.ID, "shared": "", "default": ""} {
			sp, err := db.FindSpace(ctx, name)
			if err != nil || sp.OrgID != want {
				t.Fatalf("FindSpace(%s) = %+v, %v; want org %q", name, sp, err, want)
			}
		}
		spaces, err := db.ListSpaces(ctx)
		if err != nil || len(spaces) != 3 || spaces[0].Name != "acme-prod" || spaces[0].OrgName != "acme" || spaces[1].OrgID != "" {
			t.Fatalf("ListSpaces = %+v, %v", spaces, err)
		}

		// An app without an org takes the space's; another organization's
		// app does not go in an owned space.
		a := &slipway.App{Name: "api", SpaceName: "acme-prod"}
		if err := db.CreateApp(ctx, a); err != nil || a.OrgID != acme.ID {
			t.Fatalf("app in an owned space: %+v, %v", a, err)
		}
		wantCode(t, db.CreateApp(ctx, &slipway.App{Name: "intruder", OrgName: "default", SpaceName: "acme-prod"}), slipway.EUnprocessable)
		b := &slipway.App{Name: "api", SpaceName: "shared"}
		if err := db.CreateApp(ctx, b); err != nil || b.OrgName != "default" {
			t.Fatalf("app in a shared space: %+v, %v", b, err)
		}
		c := &slipway.App{Name: "web", OrgName: "acme", SpaceName: "shared"}
		if err := db.CreateApp(ctx, c); err != nil {
			t.Fatal(err)
		}
		err = db.CreateApp(ctx, &slipway.App{Name: "web", OrgName: "default", SpaceName: "shared"})
		wantCode(t, err, slipway.EConflict)
		if strings.Contains(slipway.ErrorMessage(err), "acme") {
			t.Fatalf("the conflict names the organization that holds the name: %v", err)
		}
	})
}

func TestStore_FindAppInOrg_ResolvesWithinTheOrganization(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		for _, o := range []string{"acme", "globex"} {
			if err := db.CreateOrganization(ctx, &slipway.Organization{Name: o}); err != nil {
				t.Fatal(err)
			}
			if err := db.CreateSpace(ctx, &slipway.Space{Name: o + "-space", OrgName: o}); err != nil {
				t.Fatal(err)
			}
		}
		acme, _ := db.FindOrganization(ctx, "acme")
		globex, _ := db.FindOrganization(ctx, "globex")
		mine := &slipway.App{Name: "shop", SpaceName: "acme-space"}
		theirs := &slipway.App{Name: "shop", SpaceName: "globex-space"}
		secret := &slipway.App{Name: "secret", SpaceName: "globex-space"}
		for _, a := range []*slipway.App{mine, theirs, secret} {
			if err := db.CreateApp(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		// The admin's bare name is ambiguous; each organization's is its own.
		_, err := db.FindApp(ctx, "shop")
		wantCode(t, err, slipway.ENotFound)
		for org, want := range map[string]string{acme.ID: mine.ID, globex.ID: theirs.ID} {
			for _, ref := range []string{"shop", want} {
				a, err := db.FindAppInOrg(ctx, org, ref)
				if err != nil || a.ID != want {
					t.Fatalf("FindAppInOrg(%s, %s) = %+v, %v; want %s", org, ref, a, err, want)
				}
			}
		}
		// Another organization's app, by every form of its name, is not
		// found, in the words used for an app that does not exist.
		for _, ref := range []string{"secret", "secret-globex-space", secret.ID, "shop-globex-space", theirs.ID} {
			_, err := db.FindAppInOrg(ctx, acme.ID, ref)
			wantCode(t, err, slipway.ENotFound)
			if msg := slipway.ErrorMessage(err); msg != fmt.Sprintf("App %q was not found.", ref) {
				t.Fatalf("FindAppInOrg(acme, %s): %q", ref, msg)
			}
		}
		// Two of one organization's own apps share a bare name: ask for
		// the key, without counting other organizations'.
		if err := db.CreateApp(ctx, &slipway.App{Name: "shop", OrgName: "acme", SpaceName: "default"}); err != nil {
			t.Fatal(err)
		}
		_, err = db.FindAppInOrg(ctx, acme.ID, "shop")
		wantCode(t, err, slipway.ENotFound)
		if !strings.Contains(slipway.ErrorMessage(err), "<name>-<space>") {
			t.Fatalf("ambiguous own name: %v", err)
		}
		if a, err := db.FindAppInOrg(ctx, acme.ID, "shop-acme-space"); err != nil || a.ID != mine.ID {
			t.Fatalf("by key: %+v, %v", a, err)
		}
	})
}

func TestStore_Hooks_ScopedFlagReachesDeliveries(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "hooked")
		tenant := &slipway.Hook{AppID: a.ID, URL: "https://hooks.example.com/t", Events: []string{slipway.EventRelease}, Active: true, CreatedBy: "tok-1", Scoped: true}
		ops := &slipway.Hook{AppID: a.ID, URL: "http://10.0.0.9/ops", Events: []string{slipway.EventRelease}, Active: true, CreatedBy: "admin"}
		for _, h := range []*slipway.Hook{tenant, ops} {
			if err := db.CreateHook(ctx, h); err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.FindHook(ctx, a.ID, tenant.ID)
		if err != nil || !got.Scoped || got.CreatedBy != "tok-1" {
			t.Fatalf("FindHook = %+v, %v", got, err)
		}
		if err := db.EmitEvent(ctx, a.ID, slipway.EventRelease, nil); err != nil {
			t.Fatal(err)
		}
		// The admin sets the tenant hook's URL: later events follow the
		// admin's rule, the delivery already written keeps the tenant's.
		got.URL, got.Scoped = "https://hooks.example.com/admin", false
		if err := db.UpdateHook(ctx, got); err != nil {
			t.Fatal(err)
		}
		if again, _ := db.FindHook(ctx, a.ID, tenant.ID); again.Scoped || again.CreatedBy != "tok-1" {
			t.Fatalf("after the admin's update: %+v", again)
		}
		if err := db.EmitEvent(ctx, a.ID, slipway.EventRelease, nil); err != nil {
			t.Fatal(err)
		}
		dels, err := db.ClaimDeliveries(ctx, 10, time.Minute)
		if err != nil || len(dels) != 4 {
			t.Fatalf("ClaimDeliveries = %d, %v", len(dels), err)
		}
		scoped := map[string]int{}
		for _, d := range dels {
			if d.Scoped {
				scoped[d.URL]++
			}
		}
		if len(scoped) != 1 || scoped["https://hooks.example.com/t"] != 1 {
			t.Fatalf("scoped deliveries by URL = %v", scoped)
		}
	})
}

// A claimed delivery is hidden from other claims for its lease; given
// back (its server stopping before it was sent), it is due at once.
func TestStore_ReleaseDelivery_DueAtOnce(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "handback")
		if err := db.CreateHook(ctx, &slipway.Hook{AppID: a.ID, URL: "https://hooks.example.com/h", Events: []string{slipway.EventRelease}, Active: true}); err != nil {
			t.Fatal(err)
		}
		if err := db.EmitEvent(ctx, a.ID, slipway.EventRelease, nil); err != nil {
			t.Fatal(err)
		}
		dels, err := db.ClaimDeliveries(ctx, 10, time.Hour)
		if err != nil || len(dels) != 1 {
			t.Fatalf("first claim = %d, %v", len(dels), err)
		}
		if again, err := db.ClaimDeliveries(ctx, 10, time.Hour); err != nil || len(again) != 0 {
			t.Fatalf("a claim within the lease = %d, %v; want none", len(again), err)
		}
		if err := db.ReleaseDelivery(ctx, dels[0].ID); err != nil {
			t.Fatal(err)
		}
		if again, err := db.ClaimDeliveries(ctx, 10, time.Hour); err != nil || len(again) != 1 || again[0].ID != dels[0].ID {
			t.Fatalf("a claim after the delivery was given back = %v, %v; want it", again, err)
		}
	})
}

// TestStore_SlugGC keeps the slugs releases use (of any app) and those of
// an app's newest builds; deleting one re-checks for releases; a deleted
// slug cannot be released; the folders nothing refers to are found.
func TestStore_SlugGC(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		var tick time.Duration
		start := time.Now()
		db.Now = func() time.Time { tick += time.Millisecond; return start.Add(tick) }
		a, b := mustApp(t, db, "gca"), mustApp(t, db, "gcb")
		var slugs []string
		for range 13 {
			slugs = append(slugs, mustSlug(t, db, a.ID))
		}
		// v1 of a uses the oldest slug; b is promoted the fourth.
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slugs[0], Trigger: slipway.TriggerDeploy}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: b.ID, SlugID: slugs[3], Promotion: true, Trigger: slipway.TriggerPromotion}); err != nil {
			t.Fatal(err)
		}
		got, err := db.CollectableSlugs(ctx, a.ID, 10)
		if err != nil || strings.Join(got, ",") != slugs[1]+","+slugs[2] {
			t.Fatalf("collectable = %v, %v; want the 2nd and 3rd", got, err)
		}
		wantCode(t, db.DeleteSlug(ctx, slugs[0]), slipway.EConflict)
		wantCode(t, db.DeleteSlug(ctx, slugs[3]), slipway.EConflict)
		if err := db.DeleteSlug(ctx, slugs[1]); err != nil {
			t.Fatal(err)
		}
		wantCode(t, db.DeleteSlug(ctx, slugs[1]), slipway.ENotFound)
		_, err = db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: slugs[1], Trigger: slipway.TriggerDeploy})
		wantCode(t, err, slipway.EConflict)
		if !strings.Contains(slipway.ErrorMessage(err), "garbage-collected") {
			t.Errorf("message %q", slipway.ErrorMessage(err))
		}
		queued := &slipway.Build{AppID: a.ID}
		if err := db.CreateBuild(ctx, queued); err != nil {
			t.Fatal(err)
		}
		stray := uuid.NewString()
		unused, err := db.UnusedSlugs(ctx, []string{slugs[0], slugs[1], slugs[2], slugs[3], queued.ID, stray, "not-a-build"})
		if err != nil || strings.Join(unused, ",") != slugs[1]+","+stray {
			t.Fatalf("unused = %v, %v; want the deleted slug and the stray folder", unused, err)
		}
		// Deleting a keeps the slug b was promoted, now as b's.
		if err := db.DeleteApp(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if s, err := db.FindSlug(ctx, slugs[3]); err != nil || s.AppID != b.ID {
			t.Fatalf("promoted slug after its app was deleted: %+v, %v", s, err)
		}
		unused, err = db.UnusedSlugs(ctx, slugs)
		if err != nil || len(unused) != 12 || slices.Contains(unused, slugs[3]) {
			t.Fatalf("unused after deleting the app = %v, %v; want all but the promoted one", unused, err)
		}
	})
}

// TestStore_SlugGC_RacesWithReleases deletes slugs while releases of them
// are created: a release that was created always finds its slug.
func TestStore_SlugGC_RacesWithReleases(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "race")
		const n = 30
		slugs := make([]string, n)
		for i := range slugs {
			slugs[i] = mustSlug(t, db, a.ID)
		}
		var wg sync.WaitGroup
		released := make([]bool, n)
		for i, id := range slugs {
			wg.Add(2)
			go func() {
				defer wg.Done()
				_, err := db.CreateRelease(ctx, slipway.NewRelease{AppID: a.ID, SlugID: id, Trigger: slipway.TriggerDeploy})
				if err != nil && slipway.ErrorCode(err) != slipway.EConflict {
					t.Error(err)
				}
				released[i] = err == nil
			}()
			go func() {
				defer wg.Done()
				if err := db.DeleteSlug(ctx, id); err != nil && slipway.ErrorCode(err) != slipway.EConflict {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		for i, id := range slugs {
			if _, err := db.FindSlug(ctx, id); released[i] && err != nil {
				t.Errorf("a release of slug %d was created and the slug deleted: %v", i, err)
			}
		}
	})
}

// TestStore_RestartQueue: restarts wait in the app's queue, oldest first,
// count as work of the app, and go with it.
func TestStore_RestartQueue(t *testing.T) {
	each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		a := mustApp(t, db, "restarts")
		_, err := db.QueueRestart(ctx, uuid.NewString(), "")
		wantCode(t, err, slipway.ENotFound)
		_, err = db.NextRestart(ctx, a.ID)
		wantCode(t, err, slipway.ENotFound)
		all, err := db.QueueRestart(ctx, a.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		one, err := db.QueueRestart(ctx, a.ID, "web.2")
		if err != nil {
			t.Fatal(err)
		}
		if ids, err := db.AppsWithWork(ctx); err != nil || fmt.Sprint(ids) != fmt.Sprint([]string{a.ID}) {
			t.Fatalf("AppsWithWork = %v, %v", ids, err)
		}
		for _, want := range []*slipway.Restart{all, one} {
			got, err := db.NextRestart(ctx, a.ID)
			if err != nil || got.ID != want.ID || got.Dyno != want.Dyno || got.AppID != a.ID {
				t.Fatalf("NextRestart = %+v, %v; want %+v", got, err, want)
			}
			if err := db.FinishRestart(ctx, got.ID); err != nil {
				t.Fatal(err)
			}
		}
		if ids, _ := db.AppsWithWork(ctx); len(ids) != 0 {
			t.Fatalf("AppsWithWork after the restarts = %v", ids)
		}
		if _, err := db.QueueRestart(ctx, a.ID, ""); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteApp(ctx, a.ID); err != nil {
			t.Fatal(err)
		}
		if ids, _ := db.AppsWithWork(ctx); len(ids) != 0 {
			t.Fatalf("a deleted app's restart is still work: %v", ids)
		}
	})
}

// TestStore_SQLiteFilesAreTheServersAlone: the database file and its -wal
// and -shm files are 0600 when the store creates them, and a database file
// open to others (copied in, or left by an older server) is narrowed to
// 0600 when the store opens it.
func TestStore_SQLiteFilesAreTheServersAlone(t *testing.T) {
	path := filepath.Join(t.TempDir(), "slipway.db")
	check := func(when string) {
		t.Helper()
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", when, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: %s has mode %v, want 0600", when, filepath.Base(p), fi.Mode().Perm())
			}
		}
	}
	db, err := store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	mustApp(t, db, "modes") // a write, so the -wal and -shm files exist
	check("created")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err = store.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mustApp(t, db, "modes2")
	check("reopened after a chmod 644")
}
