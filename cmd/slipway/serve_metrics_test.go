package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/slipway/slipway/internal/pgtest"
)

// TestCountRequests counts each request by method and answer, and a
// request that got no answer under code 0.
func TestCountRequests(t *testing.T) {
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
		}
	}))
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "n"}, []string{"method", "code"})
	hc := &http.Client{Transport: countRequests(requests)(http.DefaultTransport)}
	for _, path := range []string{"/", "/", "/missing"} {
		resp, err := hc.Get(api.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	api.Close()
	if _, err := hc.Post(api.URL+"/", "text/plain", nil); err == nil {
		t.Fatal("POST to a closed server succeeded")
	}
	for _, c := range []struct {
		method, code string
		want         float64
	}{{"GET", "200", 2}, {"GET", "404", 1}, {"POST", "0", 1}} {
		var m dto.Metric
		if err := requests.WithLabelValues(c.method, c.code).Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != c.want {
			t.Errorf("%s %s counted %v times, want %v", c.method, c.code, got, c.want)
		}
	}
}

// TestE2E_Metrics_DBQueries: a server on PostgreSQL exports the
// statements it sent, and the count grows with the work it does.
func TestE2E_Metrics_DBQueries(t *testing.T) {
	cfg := testConfig(t)
	cfg.Database = pgtest.DSN(t)
	ts := startTestServer(t, cfg)
	queries := func() float64 {
		t.Helper()
		code, body := ts.raw(t, "GET", "/metrics", "", "")
		m := regexp.MustCompile(`(?m)^slipway_db_queries_total (\S+)$`).FindStringSubmatch(body)
		if code != 200 || m == nil {
			t.Fatalf("/metrics = %d, without slipway_db_queries_total:\n%.500s", code, body)
		}
		n, err := strconv.ParseFloat(m[1], 64)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := queries()
	if before <= 0 {
		t.Fatalf("slipway_db_queries_total = %v after start (migrations ran), want > 0", before)
	}
	if _, err := ts.c.CreateApp(bg, "counted", "", ""); err != nil {
		t.Fatal(err)
	}
	if after := queries(); after <= before {
		t.Fatalf("slipway_db_queries_total = %v after creating an app, was %v", after, before)
	}
}
