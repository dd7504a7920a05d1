package main

import (
	"strings"
	"testing"

	"github.com/slipway/slipway/client"
)

// TestE2E_Metrics_NameNoTenant scrapes a server that has built and
// released a tenant's app and routed a request to it: /metrics counts it
// but names neither the app, its organization, its build nor its release;
// the app's id appears only as the app_id label of the router's series
// (per-app router figures, bounded by the number of apps). With
// --metrics-token it needs that token.
func TestE2E_Metrics_NameNoTenant(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MetricsToken = "scrape-token"
	ts := startTestServer(t, cfg)
	admin := "Bearer " + ts.Token
	if code, body := ts.raw(t, "POST", "/organizations", admin, `{"name":"tenantorg"}`); code != 201 {
		t.Fatalf("create org: %d %s", code, body)
	}
	app, err := ts.c.CreateApp(bg, "tenantapp", "", "tenantorg")
	if err != nil {
		t.Fatal(err)
	}
	build := ts.push(t, app.Key, "web: ./testapp\n")
	rel := ts.release(t, app.Key, client.NewRelease{Slug: build})
	if rel.Status != "succeeded" {
		t.Fatalf("release %+v", rel)
	}
	ts.raw(t, "GET", "/apps/tenantapp-default/releases/"+rel.ID, admin, "")
	if code, body := ts.get(t, app.Key, "/"); code != 200 {
		t.Fatalf("GET / through the router: %d %s", code, body)
	}
	ts.raw(t, "GET", "/apps/tenantapp-nope", admin, "")

	for _, auth := range []string{"", admin, "Bearer wrong"} {
		if code, body := ts.raw(t, "GET", "/metrics", auth, ""); code != 401 || !strings.Contains(body, `"id":"unauthorized"`) {
			t.Errorf("/metrics with %q = %d %.200s, want 401", auth, code, body)
		}
	}
	code, body := ts.raw(t, "GET", "/metrics", "Bearer scrape-token", "")
	if code != 200 {
		t.Fatalf("/metrics with the metrics token = %d %.300s", code, body)
	}
	for _, want := range []string{
		`slipway_release_duration_seconds_count{status="succeeded"} 1`, `slipway_builds_total{status="succeeded"} 1`, `slipway_dynos{state="running"} 1`,
		`slipway_router_requests_total{app_id="` + app.ID + `",code_class="2xx",track="stable"} 1`,
		`slipway_router_request_duration_seconds_count{app_id="` + app.ID + `",track="stable"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if n, labels := strings.Count(body, app.ID), strings.Count(body, `app_id="`+app.ID+`"`); n != labels {
		t.Errorf("/metrics names the app id %d times, %d of them as an app_id label", n, labels)
	}
	for _, secret := range []string{"tenantapp", "tenantorg", app.Organization.ID, build, rel.ID} {
		if strings.Contains(body, secret) {
			t.Errorf("/metrics names %q", secret)
		}
	}
}
