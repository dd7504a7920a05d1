package slipway

import (
	"testing"
	"time"
)

func TestMedianAndPercentile(t *testing.T) {
	h := func(n ...int) []time.Duration {
		out := make([]time.Duration, len(n))
		for i, x := range n {
			out[i] = time.Duration(x) * time.Hour
		}
		return out
	}
	tests := []struct {
		in          []time.Duration
		median, p90 time.Duration
	}{
		{nil, 0, 0},
		{h(5), 5 * time.Hour, 5 * time.Hour},
		{h(9, 1), 5 * time.Hour, 9 * time.Hour},
		{h(10, 2, 3), 3 * time.Hour, 10 * time.Hour},
		{h(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 5*time.Hour + 30*time.Minute, 9 * time.Hour},
		{h(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11), 6 * time.Hour, 10 * time.Hour},
	}
	for _, tt := range tests {
		if got := Median(tt.in); got != tt.median {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.median)
		}
		if got := Percentile(tt.in, 90); got != tt.p90 {
			t.Errorf("Percentile(%v, 90) = %v, want %v", tt.in, got, tt.p90)
		}
	}
}

// A summary lists at most four names of each kind, then counts the rest;
// config values never reach it.
func TestReleaseDiff_SummaryIsOneShortLine(t *testing.T) {
	from := &ReleaseContents{Release: &Release{Version: 1, SlugID: "s", Config: map[string]string{"GONE": "v"}}}
	cfg := map[string]string{}
	for _, k := range []string{"A", "B", "C", "D", "E", "F"} {
		cfg[k] = "secret-" + k
	}
	to := &ReleaseContents{Release: &Release{Version: 2, SlugID: "s", Config: cfg}}
	want := "v2 against v1: config +A +B +C +D (+2 more) -GONE"
	if got := DiffReleases(from, to).Summary(); got != want {
		t.Fatalf("Summary = %q, want %q", got, want)
	}
	if got := DiffReleases(to, to).Summary(); got != "v2 against v2: no changes" {
		t.Fatalf("same release: %q", got)
	}
}

// BenchmarkComputeDeliveryMetrics: an app's 1,000 releases in the window,
// as an app's dashboard page reads them, over 27 days and all in one day
// (where every succeeded release has the others within its 24 hours of
// rollback blame).
func BenchmarkComputeDeliveryMetrics(b *testing.B) {
	for _, gap := range []time.Duration{40 * time.Minute, time.Minute} {
		b.Run("every "+gap.String(), func(b *testing.B) { benchDelivery(b, gap) })
	}
}

func benchDelivery(b *testing.B, gap time.Duration) {
	now := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	recs := make([]DeliveryRecord, 1000)
	for i := range recs {
		c := now.Add(time.Duration(i-1000) * gap)
		recs[i] = DeliveryRecord{AppID: "0b6a8f5e-2f0c-4a1e-9d7e-4c1f3f0f6a11", Version: i + 1, Trigger: TriggerDeploy, Status: ReleaseSucceeded,
			CreatedAt: c, EndedAt: c.Add(time.Minute), BuildCreatedAt: c.Add(-time.Minute)}
		if i%10 == 9 {
			recs[i].Status = ReleaseFailed
		}
	}
	for b.Loop() {
		ComputeDeliveryMetrics(recs, now, 30*24*time.Hour)
	}
}
