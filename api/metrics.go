package api

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway"
)

// Metrics are the Prometheus series the server exports. It observes the
// engine too: BuildFinished and ReleaseFinished count builds and time
// releases by outcome.
type Metrics struct {
	requests *prometheus.CounterVec
	releases *prometheus.HistogramVec
	builds   *prometheus.CounterVec
}

func newMetrics(reg *prometheus.Registry) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_http_requests_total", Help: "HTTP requests by method, route and status code.",
		}, []string{"method", "route", "code"}),
		releases: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "slipway_release_duration_seconds", Help: "Time from a release starting to its end, by outcome.",
			Buckets: []float64{0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600},
		}, []string{"status"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slipway_builds_total", Help: "Builds that ended, by status.",
		}, []string{"status"}),
	}
	reg.MustRegister(m.requests, m.releases, m.builds)
	return m
}

// BuildFinished counts a build's end.
func (m *Metrics) BuildFinished(b *slipway.Build, status string) {
	m.builds.WithLabelValues(status).Inc()
}

// ReleaseFinished records how long a release took, by outcome.
func (m *Metrics) ReleaseFinished(r *slipway.Release, status string, took time.Duration) {
	m.releases.WithLabelValues(status).Observe(took.Seconds())
}

// RegisterGauges adds the series read at scrape time: dynos by state and
// the number of apps with releases waiting.
func (s *Server) RegisterGauges() {
	reg := s.cfg.Registry
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "slipway_release_queue_apps", Help: "Apps with work waiting: a queued or pending release, or a restart.",
	}, func() float64 {
		ids, err := s.st.AppsWithWork(context.Background())
		if err != nil {
			return -1
		}
		return float64(len(ids))
	}))
	reg.MustRegister(&dynoCollector{s: s, desc: prometheus.NewDesc("slipway_dynos", "Dynos by state.", []string{"state"}, nil)})
	reg.MustRegister(newDeliveryCollector(s))
}

type dynoCollector struct {
	s    *Server
	desc *prometheus.Desc
}

func (c *dynoCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *dynoCollector) Collect(ch chan<- prometheus.Metric) {
	// /metrics needs no token: bound what one scrape can cost.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts := map[string]int{slipway.DynoStarting: 0, slipway.DynoRunning: 0, slipway.DynoCrashed: 0, slipway.DynoStopping: 0, slipway.DynoStopped: 0}
	if dc, ok := c.s.cfg.Runtime.(slipway.DynoCounter); ok {
		for state, n := range dc.CountDynos() {
			counts[state] += n
		}
	} else if apps, err := c.s.st.ListApps(ctx); err == nil && c.s.cfg.Runtime != nil {
		for _, a := range apps {
			dynos, err := c.s.cfg.Runtime.Dynos(ctx, a.ID)
			if err != nil {
				continue
			}
			for _, d := range dynos {
				counts[d.State]++
			}
		}
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), state)
	}
}
