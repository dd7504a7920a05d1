package slipway

import (
	"reflect"
	"testing"
)

// buckets returns a Buckets slice with n[i] in bucket i.
func buckets(n map[int]int64) []int64 {
	b := make([]int64, len(LatencyBucketsMs)+1)
	for i, v := range n {
		b[i] = v
	}
	return b
}

func TestTraffic_Since(t *testing.T) {
	tests := []struct {
		name      string
		now, base Traffic
		want      Traffic
	}{
		{
			"window",
			Traffic{Requests: 150, Errors: 7, Buckets: buckets(map[int]int64{0: 100, 3: 40, 13: 10})},
			Traffic{Requests: 100, Errors: 2, Buckets: buckets(map[int]int64{0: 80, 3: 15, 13: 5})},
			Traffic{Requests: 50, Errors: 5, Buckets: buckets(map[int]int64{0: 20, 3: 25, 13: 5})},
		},
		{
			"from a zero reading (no buckets yet)",
			Traffic{Requests: 3, Errors: 1, Buckets: buckets(map[int]int64{1: 3})},
			Traffic{},
			Traffic{Requests: 3, Errors: 1, Buckets: buckets(map[int]int64{1: 3})},
		},
		{
			"counters started again (a server restart)",
			Traffic{Requests: 4, Errors: 0, Buckets: buckets(map[int]int64{0: 4})},
			Traffic{Requests: 100, Errors: 9, Buckets: buckets(map[int]int64{0: 100})},
			Traffic{Requests: 4, Errors: 0, Buckets: buckets(map[int]int64{0: 4})},
		},
		{
			"no change",
			Traffic{Requests: 10, Errors: 1, Buckets: buckets(map[int]int64{2: 10})},
			Traffic{Requests: 10, Errors: 1, Buckets: buckets(map[int]int64{2: 10})},
			Traffic{Buckets: buckets(nil)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.now.Since(tt.base)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Since = %+v, want %+v", got, tt.want)
			}
			// A window is a copy: changing it leaves the reading alone
			// (after a restart Since returns the reading itself, as its
			// doc says).
			if tt.now.Requests >= tt.base.Requests && len(tt.now.Buckets) > 0 {
				before := tt.now.Buckets[0]
				got.Buckets[0]++
				if tt.now.Buckets[0] != before {
					t.Error("Since returned the reading's own Buckets")
				}
			}
		})
	}
}

func TestTraffic_Summary(t *testing.T) {
	last := len(LatencyBucketsMs)
	tests := []struct {
		name string
		tr   Traffic
		want TrafficSummary
	}{
		{"no requests", Traffic{}, TrafficSummary{}},
		{
			// 98 under 1 ms, 2 in (5, 10] ms: p50 1 ms, p99 10 ms.
			"fast with a tail",
			Traffic{Requests: 100, Errors: 1, Buckets: buckets(map[int]int64{0: 98, 3: 2})},
			TrafficSummary{Requests: 100, Errors: 1, ErrorRate: 0.01, P50Ms: 1, P99Ms: 10},
		},
		{
			"a third fail (rounded to 4 places)",
			Traffic{Requests: 3, Errors: 1, Buckets: buckets(map[int]int64{6: 3})},
			TrafficSummary{Requests: 3, Errors: 1, ErrorRate: 0.3333, P50Ms: 100, P99Ms: 100},
		},
		{
			"past the largest bound reads as twice it",
			Traffic{Requests: 10, Errors: 10, Buckets: buckets(map[int]int64{0: 4, last: 6})},
			TrafficSummary{Requests: 10, Errors: 10, ErrorRate: 1, P50Ms: 2 * LatencyBucketsMs[last-1], P99Ms: 2 * LatencyBucketsMs[last-1]},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.tr.Summary(); got != tt.want {
				t.Errorf("Summary = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// A window's summary is the summary of the requests in it only.
func TestTraffic_SinceThenSummary(t *testing.T) {
	base := Traffic{Requests: 1000, Errors: 0, Buckets: buckets(map[int]int64{0: 1000})}
	now := Traffic{Requests: 1100, Errors: 20, Buckets: buckets(map[int]int64{0: 1000, 8: 100})}
	got := now.Since(base).Summary()
	want := TrafficSummary{Requests: 100, Errors: 20, ErrorRate: 0.2, P50Ms: 500, P99Ms: 500}
	if got != want {
		t.Errorf("Summary of the window = %+v, want %+v", got, want)
	}
}
