package api

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slipway/slipway"
)

// deliveryWindow is the window of the delivery metrics /metrics exports.
const deliveryWindow = 30 * 24 * time.Hour

// deliveryCollector exports the delivery metrics of every app together
// over the last 30 days, computed at scrape time from one read of the
// releases created since (docs/delivery-metrics.md). Like every series of
// /metrics, they name no app: per-app figures are the API's.
type deliveryCollector struct {
	s                                   *Server
	perDay, leadTime, failRate, restore *prometheus.Desc
}

func newDeliveryCollector(s *Server) *deliveryCollector {
	return &deliveryCollector{s: s,
		perDay:   prometheus.NewDesc("slipway_delivery_deployments_per_day", "Succeeded deployments per day over the last 30 days, all apps together.", nil, nil),
		leadTime: prometheus.NewDesc("slipway_delivery_lead_time_seconds", "Lead time for changes (commit to deployment succeeded) over the last 30 days, by quantile (0.5, 0.9).", []string{"quantile"}, nil),
		failRate: prometheus.NewDesc("slipway_delivery_change_failure_rate", "Share of the ended deployments of the last 30 days that failed or were rolled back within 24 h.", nil, nil),
		restore:  prometheus.NewDesc("slipway_delivery_time_to_restore_seconds", "Median time from a change failure of the last 30 days to its app's next succeeded release.", nil, nil),
	}
}

func (c *deliveryCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.perDay
	ch <- c.leadTime
	ch <- c.failRate
	ch <- c.restore
}

func (c *deliveryCollector) Collect(ch chan<- prometheus.Metric) {
	// /metrics may need no token: bound what one scrape can cost.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := c.s.cfg.Now()
	recs, err := c.s.st.DeliveryHistory(ctx, nil, now.Add(-deliveryWindow))
	if err != nil {
		return
	}
	m := slipway.ComputeDeliveryMetrics(recs, now, deliveryWindow)
	ch <- prometheus.MustNewConstMetric(c.perDay, prometheus.GaugeValue, m.PerDay)
	if m.LeadTimeMedian != nil {
		ch <- prometheus.MustNewConstMetric(c.leadTime, prometheus.GaugeValue, m.LeadTimeMedian.Seconds(), "0.5")
		ch <- prometheus.MustNewConstMetric(c.leadTime, prometheus.GaugeValue, m.LeadTimeP90.Seconds(), "0.9")
	}
	if m.ChangeFailureRate != nil {
		ch <- prometheus.MustNewConstMetric(c.failRate, prometheus.GaugeValue, *m.ChangeFailureRate)
	}
	if m.TimeToRestoreMedian != nil {
		ch <- prometheus.MustNewConstMetric(c.restore, prometheus.GaugeValue, m.TimeToRestoreMedian.Seconds())
	}
}
