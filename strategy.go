package slipway

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

// Release strategies: how a release reaches an app's dynos and traffic.
const (
	StrategyRolling   = "rolling"    // replace dynos one by one (the default)
	StrategyCanary    = "canary"     // a share of traffic first, in steps
	StrategyBlueGreen = "blue-green" // the whole formation beside the old, then a switch
)

// Strategies lists the strategy types an app may choose, in the order the
// API documents them.
func Strategies() []string { return []string{StrategyRolling, StrategyCanary, StrategyBlueGreen} }

// PauseUntilChecks is the CanaryStep.Pause that waits for every required
// check of the release to be success.
const PauseUntilChecks = "until-checks"

// Strategy is how an app's releases roll out. The zero value (and
// {"type":"rolling"}) is the rolling restart.
type Strategy struct {
	Type           string              `json:"type"`
	Steps          []CanaryStep        `json:"steps,omitempty"`
	Analysis       *Analysis           `json:"analysis,omitempty"`
	RequiredChecks []string            `json:"required_checks,omitempty"`
	Preview        bool                `json:"preview,omitempty"`
	AutoPromote    bool                `json:"auto_promote,omitempty"`
	ScaleDownDelay Duration            `json:"scale_down_delay,omitempty"`
	Rollbacks      string              `json:"rollbacks,omitempty"` // "" or "rolling": rollbacks roll; "strategy": they follow this strategy
	Types          map[string]Strategy `json:"types,omitempty"`     // per process type; web's entry, if any, is ignored
}

// CanaryStep is one step of a canary: the share of traffic (0–100) on the
// new release, then a pause: "" (none), a duration such as "2m", or
// "until-checks".
type CanaryStep struct {
	Weight int    `json:"weight"`
	Pause  string `json:"pause,omitempty"`
}

// Analysis bounds what the router may measure on the new release before
// the rollout aborts. Zero bounds are not checked.
type Analysis struct {
	MaxErrorRate float64  `json:"max_error_rate,omitempty"` // 5xx and failed connections per request, 0–1
	MaxP99Ms     float64  `json:"max_p99_ms,omitempty"`
	MinRequests  int64    `json:"min_requests,omitempty"` // no verdict on fewer requests than this
	Interval     Duration `json:"interval,omitempty"`     // how often the figures are judged; default 15s
}

// Duration is a time.Duration written in JSON as Go's duration text ("2m").
type Duration time.Duration

// MarshalText writes the duration as text, "" for zero.
func (d Duration) MarshalText() ([]byte, error) {
	if d == 0 {
		return []byte{}, nil
	}
	return []byte(time.Duration(d).String()), nil
}

// UnmarshalText reads Go's duration text; "" is zero.
func (d *Duration) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = 0
		return nil
	}
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("%q is not a duration such as 30s or 5m", Clip(string(b)))
	}
	*d = Duration(v)
	return nil
}

// Limits of a strategy.
const (
	MaxCanarySteps     = 20
	MaxStrategyPause   = 7 * 24 * time.Hour
	MaxRequiredChecks  = 20
	DefaultAnalysisGap = 15 * time.Second
)

// Validate returns EUnprocessable naming the first field that breaks the
// rules, and fills defaults: an empty type is rolling.
func (s *Strategy) Validate() error { return s.validate("", true) }

func (s *Strategy) validate(prefix string, top bool) error {
	field := func(name string) string { return prefix + name }
	bad := func(name, format string, args ...any) error {
		return Errorf(EUnprocessable, "%s %s", field(name), fmt.Sprintf(format, args...))
	}
	if s.Type == "" {
		s.Type = StrategyRolling
	}
	switch s.Type {
	case StrategyRolling:
		if len(s.Steps) > 0 || s.Analysis != nil || s.Preview || s.AutoPromote || s.ScaleDownDelay != 0 {
			return bad("type", "is rolling, which takes none of steps, analysis, preview, auto_promote or scale_down_delay.")
		}
	case StrategyCanary:
		if s.Preview || s.AutoPromote || s.ScaleDownDelay != 0 {
			return bad("type", "is canary, which takes none of preview, auto_promote or scale_down_delay.")
		}
		if len(s.Steps) == 0 {
			return bad("steps", "must list at least one step, such as [{\"weight\":10,\"pause\":\"2m\"},{\"weight\":100}].")
		}
		if len(s.Steps) > MaxCanarySteps {
			return bad("steps", "may have at most %d steps, not %d.", MaxCanarySteps, len(s.Steps))
		}
		last := 0
		for i, st := range s.Steps {
			name := fmt.Sprintf("steps[%d]", i)
			if st.Weight < 1 || st.Weight > 100 {
				return bad(name+".weight", "must be 1 to 100, not %d.", st.Weight)
			}
			if st.Weight < last {
				return bad(name+".weight", "must not be less than the step before it (%d).", last)
			}
			last = st.Weight
			if err := checkPause(st.Pause); err != nil {
				return bad(name+".pause", "%s", err.Error())
			}
			if st.Pause == PauseUntilChecks && len(s.RequiredChecks) == 0 {
				return bad(name+".pause", "waits until-checks, so required_checks must name at least one check context.")
			}
		}
		if a := s.Analysis; a != nil {
			if a.MaxErrorRate < 0 || a.MaxErrorRate > 1 || math.IsNaN(a.MaxErrorRate) {
				return bad("analysis.max_error_rate", "must be from 0 to 1, not %v.", a.MaxErrorRate)
			}
			if a.MaxP99Ms < 0 || math.IsNaN(a.MaxP99Ms) || a.MaxP99Ms > 3600_000 {
				return bad("analysis.max_p99_ms", "must be from 0 to 3600000, not %v.", a.MaxP99Ms)
			}
			if a.MinRequests < 0 {
				return bad("analysis.min_requests", "must not be negative.")
			}
			if a.Interval == 0 {
				a.Interval = Duration(DefaultAnalysisGap)
			}
			if iv := time.Duration(a.Interval); iv < time.Second || iv > time.Hour {
				return bad("analysis.interval", "must be from 1s to 1h, not %s.", iv)
			}
			if a.MaxErrorRate == 0 && a.MaxP99Ms == 0 {
				return bad("analysis", "must set max_error_rate or max_p99_ms.")
			}
		}
	case StrategyBlueGreen:
		if len(s.Steps) > 0 || s.Analysis != nil {
			return bad("type", "is blue-green, which takes neither steps nor analysis.")
		}
		if d := time.Duration(s.ScaleDownDelay); d < 0 || d > MaxStrategyPause {
			return bad("scale_down_delay", "must be from 0 to %s, not %s.", MaxStrategyPause, d)
		}
	default:
		return bad("type", "must be one of %s, not %q.", strings.Join(Strategies(), ", "), Clip(s.Type))
	}
	if len(s.RequiredChecks) > MaxRequiredChecks {
		return bad("required_checks", "may name at most %d contexts.", MaxRequiredChecks)
	}
	seen := map[string]bool{}
	for i, c := range s.RequiredChecks {
		if n := len(c); n < 6 || n > 31 || !contextRE.MatchString(c) {
			return bad(fmt.Sprintf("required_checks[%d]", i), "must be a check context of 6 to 31 letters, digits and . / \\ + -, not %q.", Clip(c))
		}
		if seen[c] {
			return bad(fmt.Sprintf("required_checks[%d]", i), "repeats %q.", c)
		}
		seen[c] = true
	}
	switch s.Rollbacks {
	case "", StrategyRolling, "strategy":
	default:
		return bad("rollbacks", "must be \"rolling\" or \"strategy\", not %q.", Clip(s.Rollbacks))
	}
	if !top && len(s.Types) > 0 {
		return bad("types", "may only be set at the top level.")
	}
	types := make([]string, 0, len(s.Types))
	for t := range s.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		if !processTypeRE.MatchString(t) {
			return bad("types", "names %q, which is not a process type.", Clip(t))
		}
		sub := s.Types[t]
		if err := sub.validate(prefix+"types."+t+".", false); err != nil {
			return err
		}
		if sub.Type == StrategyBlueGreen && t != "web" {
			return bad("types."+t+".type", "is blue-green, which needs traffic: only web has it.")
		}
		s.Types[t] = sub
	}
	return nil
}

func checkPause(p string) error {
	if p == "" || p == PauseUntilChecks {
		return nil
	}
	d, err := time.ParseDuration(p)
	if err != nil || d < 0 || d > MaxStrategyPause {
		return fmt.Errorf("must be a duration from 0s to %s (such as \"2m\") or %q, not %q.", MaxStrategyPause, PauseUntilChecks, Clip(p))
	}
	return nil
}

// ForType returns the strategy that process type t follows.
func (s Strategy) ForType(t string) Strategy {
	if sub, ok := s.Types[t]; ok && t != "web" {
		return sub
	}
	top := s
	top.Types = nil
	if top.Type == "" {
		top.Type = StrategyRolling
	}
	return top
}

// Gated reports whether the strategy does anything but a rolling restart.
func (s Strategy) Gated() bool {
	if s.Type != "" && s.Type != StrategyRolling {
		return true
	}
	for _, sub := range s.Types {
		if sub.Type != "" && sub.Type != StrategyRolling {
			return true
		}
	}
	return false
}

// Rollout phases.
const (
	PhaseProgressing = "progressing" // placing the step's dynos and weight
	PhasePaused      = "paused"      // waiting for a time, checks or a promote
	PhaseAnalyzing   = "analyzing"   // waiting for enough requests to judge
	PhasePromoting   = "promoting"   // going to 100%
	PhaseAborted     = "aborted"     // back on the stable release
	PhaseDone        = "done"        // the new release has all of the traffic
)

// Rollout is the durable state of one release's gated rollout. The API
// shows the fields before StepStarted; the rest are the planner's own.
type Rollout struct {
	ReleaseID  string     `json:"release_id"`
	Strategy   string     `json:"strategy"`
	Step       int        `json:"step"`  // index into the steps, from 0
	Steps      int        `json:"steps"` // how many there are
	Weight     int        `json:"weight"`
	Phase      string     `json:"phase"`
	PauseUntil *time.Time `json:"pause_until"`
	WaitingFor []string   `json:"waiting_for"`
	Analysis   Figures    `json:"analysis"`
	Reason     string     `json:"reason"`
	PreviewURL string     `json:"preview_url,omitempty"`
	// Placed is false until the runtime has carried out the step (and
	// again after a server restart or a formation change, so the step is
	// placed again, keeping its pause deadline).
	Placed bool `json:"placed"`
	// StepStarted is when the current step was first placed.
	StepStarted time.Time `json:"step_started"`
	// Held is set by a pause action and cleared by resume or promote.
	Held bool `json:"held"`
	// Request is an action asked for and not yet carried out:
	// RequestPromote, RequestPromoteFull or RequestAbort (By says who).
	Request string `json:"request,omitempty"`
	By      string `json:"by,omitempty"`
	// Baseline holds the router's cumulative figures when the step's
	// analysis window began; the window's figures are the difference.
	Baseline TrafficPair `json:"baseline"`
	// ScaleDownAt is when the old release's dynos stop after a blue-green
	// switch; until then a rollback to it only flips the router back.
	ScaleDownAt *time.Time `json:"scale_down_at,omitempty"`
	// Started is when the rollout began.
	Started time.Time `json:"started"`
	// Seq counts the writes of the state, so the engine's write does not
	// undo an action a user asked for after the engine read it.
	Seq int64 `json:"seq"`
}

// Actions a user may ask of a rollout.
const (
	RequestPromote     = "promote"
	RequestPromoteFull = "promote-full"
	RequestAbort       = "abort"
)

// SplitCounts divides quantity dynos of a type between the stable and the
// canary release at weight percent: the canary gets ceil(weight% of
// quantity), at least one; the stable release the rest, at least one
// while weight is under 100 (so it can take traffic back at once).
func SplitCounts(quantity, weight int) (stable, canary int) {
	if quantity <= 0 {
		return 0, 0
	}
	if weight >= 100 {
		return 0, quantity
	}
	canary = max(1, (weight*quantity+99)/100)
	canary = min(canary, quantity)
	return max(quantity-canary, 1), canary
}

// Figures are the analysis figures of a rollout's window, per track.
type Figures struct {
	Canary TrafficSummary `json:"canary"`
	Stable TrafficSummary `json:"stable"`
}

// TrafficSummary is what the router measured on one release in a window.
type TrafficSummary struct {
	Requests  int64   `json:"requests"`
	Errors    int64   `json:"errors"`
	ErrorRate float64 `json:"error_rate"`
	P50Ms     float64 `json:"p50_ms"`
	P99Ms     float64 `json:"p99_ms"`
}

// LatencyBucketsMs are the upper bounds of the router's latency histogram,
// in milliseconds; a last, unbounded bucket follows them.
var LatencyBucketsMs = []float64{1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}

// Traffic is the router's cumulative count of one release's requests:
// answers with status 5xx and requests that got no answer from a dyno are
// errors. Buckets has len(LatencyBucketsMs)+1 counts.
type Traffic struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Buckets  []int64 `json:"buckets,omitempty"`
}

// TrafficPair is the traffic of the stable and the canary release.
type TrafficPair struct {
	Stable Traffic `json:"stable"`
	Canary Traffic `json:"canary"`
}

// Since returns t minus an earlier reading base. A reading smaller than
// base means the counters started again (a server restart): then t itself
// is the window.
func (t Traffic) Since(base Traffic) Traffic {
	if t.Requests < base.Requests || len(base.Buckets) != len(t.Buckets) {
		if t.Requests < base.Requests {
			return t
		}
		base.Buckets = nil
	}
	out := Traffic{Requests: t.Requests - base.Requests, Errors: t.Errors - base.Errors}
	if out.Errors < 0 {
		out.Errors = 0
	}
	out.Buckets = make([]int64, len(t.Buckets))
	for i, n := range t.Buckets {
		if base.Buckets != nil {
			n -= base.Buckets[i]
		}
		out.Buckets[i] = max(n, 0)
	}
	return out
}

// Summary turns counts into rates and percentiles. A percentile is the
// upper bound of the bucket it falls in (the last bucket reads as twice
// the largest bound).
func (t Traffic) Summary() TrafficSummary {
	s := TrafficSummary{Requests: t.Requests, Errors: t.Errors}
	if t.Requests > 0 {
		s.ErrorRate = math.Round(float64(t.Errors)/float64(t.Requests)*1e4) / 1e4
	}
	s.P50Ms = t.quantile(0.5)
	s.P99Ms = t.quantile(0.99)
	return s
}

func (t Traffic) quantile(q float64) float64 {
	var total int64
	for _, n := range t.Buckets {
		total += n
	}
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var seen int64
	for i, n := range t.Buckets {
		seen += n
		if seen >= rank {
			if i < len(LatencyBucketsMs) {
				return LatencyBucketsMs[i]
			}
			break
		}
	}
	return 2 * LatencyBucketsMs[len(LatencyBucketsMs)-1]
}
