package backoff

import (
	"math"
	"testing"
	"time"
)

func TestExponential_Delay(t *testing.T) {
	tests := []struct {
		name string
		e    Exponential
		n    []int
		want []time.Duration
	}{
		{"doubling, capped", Exponential{Initial: time.Second, Max: time.Minute},
			[]int{1, 2, 3, 4, 5, 6, 7, 8, 100, 1 << 30},
			[]time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 32 * time.Second, time.Minute, time.Minute, time.Minute, time.Minute}},
		{"n below 1 is the first wait", Exponential{Initial: time.Second, Max: time.Minute},
			[]int{0, -5}, []time.Duration{time.Second, time.Second}},
		{"growth by half", Exponential{Initial: time.Millisecond, Factor: 1.5, Max: 200 * time.Millisecond},
			[]int{1, 2, 3, 4, 20},
			[]time.Duration{time.Millisecond, 1500 * time.Microsecond, 2250 * time.Microsecond, 3375 * time.Microsecond, 200 * time.Millisecond}},
		{"no cap does not overflow", Exponential{Initial: time.Second},
			[]int{1, 64, 1 << 20}, []time.Duration{time.Second, math.MaxInt64, math.MaxInt64}},
		{"a cap below the first wait", Exponential{Initial: time.Second, Max: time.Millisecond},
			[]int{1, 2}, []time.Duration{time.Millisecond, time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i, n := range tt.n {
				if got := tt.e.Delay(n); got != tt.want[i] {
					t.Errorf("Delay(%d) = %v, want %v", n, got, tt.want[i])
				}
			}
		})
	}
}

func TestSequence_Next(t *testing.T) {
	e := Exponential{Initial: time.Millisecond, Max: 20 * time.Millisecond}
	s := e.Sequence()
	var got []time.Duration
	for range 7 {
		got = append(got, s.Next())
	}
	want := []time.Duration{1, 2, 4, 8, 16, 20, 20}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits = %v, want %v ms", got, want)
		}
	}
	if again := e.Sequence().Next(); again != time.Millisecond {
		t.Errorf("a new sequence starts at %v", again)
	}
}
