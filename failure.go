package slipway

import (
	"errors"
	"sort"
	"strings"
)

// Failure phases: where a failed or unknown release went wrong.
const (
	FailBuild        = "build"         // the release's slug cannot be run (gone, or of a kind the runtime cannot run)
	FailReleasePhase = "release-phase" // the slug's release command failed or ran past its timeout
	FailStart        = "start"         // a dyno or pod could not be created or started
	FailHealth       = "health"        // a dyno ran but did not pass its health check in time
	FailCrash        = "crash"         // a dyno exited (or crash-looped) before it was healthy
	FailDeadline     = "deadline"      // the rollout did not end within the release deadline
	FailAnalysis     = "analysis"      // the canary's figures broke the analysis' bounds
	FailCheck        = "check"         // a required status check reported failure or error
	FailAborted      = "aborted"       // a user aborted the rollout
	FailSuperseded   = "superseded"    // a newer release of the app aborted the rollout
)

// MaxFailureOutput is how many of a failing process's last output lines a
// Failure keeps.
const MaxFailureOutput = 20

// MaxHealthBody is how many bytes of a health check's last answer a
// Failure keeps.
const MaxHealthBody = 256

// Redacted replaces every config value of the app in a failure's output.
const Redacted = "[redacted]"

// Failure says why a release failed (or ended unknown), as data: the
// release's one-sentence error says the same for a person. Fields that do
// not apply to the phase are zero (null in JSON).
type Failure struct {
	// Phase is one of the Fail constants.
	Phase string `json:"phase"`
	// Dyno is the dyno ("web.2", "release.1") or pod that failed, "" when
	// the failure is not about one.
	Dyno string `json:"dyno"`
	// ExitCode is the failing process's exit status, nil when it did not
	// exit by itself (a signal, a timeout, never started).
	ExitCode *int `json:"exit_code"`
	// Signal is the signal that ended the process ("SIGKILL"), or what
	// killed it ("OOMKilled"); "" for none.
	Signal string `json:"signal"`
	// Output is the process's last output lines, oldest first, at most
	// MaxFailureOutput, with every config value of the app replaced by
	// Redacted.
	Output []string `json:"output"`
	// Health is the last answer of the health check that did not pass.
	Health *HealthAnswer `json:"health"`
	// Check is the required status check that failed the release.
	Check *FailedCheck `json:"check"`
	// Analysis holds the figures of the analysis window that failed a
	// canary.
	Analysis *Figures `json:"analysis"`
	// AbortedBy says who aborted the rollout: a user's email or token
	// name, or "v7, a newer release".
	AbortedBy string `json:"aborted_by"`
}

// HealthAnswer is a health check's last answer.
type HealthAnswer struct {
	// Check is what was checked: "GET /health", "TCP connect".
	Check string `json:"check"`
	// Code is the HTTP status code, 0 when nothing answered.
	Code int `json:"code"`
	// Body is the first bytes of the answer's body (at most
	// MaxHealthBody), config values redacted.
	Body string `json:"body"`
	// Error says why there was no answer ("connection refused").
	Error string `json:"error"`
}

// FailedCheck is the status check that failed a release.
type FailedCheck struct {
	Context   string `json:"context"`
	State     string `json:"state"`
	TargetURL string `json:"target_url"`
}

// Error makes a *Failure an error, so that runtimes can attach it to the
// error they return (WithFailure) and callers find it with errors.As.
func (f *Failure) Error() string { return "release failed in its " + f.Phase + " phase" }

// WithFailure returns err, which still answers ErrorCode, Message and
// errors.Is as before, with f attached: FailureOf finds it. A nil f
// returns err.
func WithFailure(err error, f *Failure) error {
	if err == nil || f == nil {
		return err
	}
	return &failedError{err: err, f: f}
}

type failedError struct {
	err error
	f   *Failure
}

func (e *failedError) Error() string   { return e.err.Error() }
func (e *failedError) Unwrap() []error { return []error{e.err, e.f} }

// FailureOf returns the first *Failure in err's chain, nil when none.
func FailureOf(err error) *Failure {
	var f *Failure
	if errors.As(err, &f) {
		return f
	}
	return nil
}

// ExitStatus returns a pointer to code, for Failure.ExitCode.
func ExitStatus(code int) *int { return &code }

// TailLines returns the last MaxFailureOutput lines of lines.
func TailLines(lines []string) []string {
	if len(lines) > MaxFailureOutput {
		lines = lines[len(lines)-MaxFailureOutput:]
	}
	return append([]string{}, lines...)
}

// Redactor replaces config values in text a release shows (its error,
// its log, a failure's output) with Redacted.
type Redactor struct {
	r *strings.Replacer
}

// MinRedacted is the length from which config values are redacted. A
// shorter value ("1", "on", "2") cannot be told from ordinary text: it
// would turn "v2" and "exit status 1" into [redacted] in every line, and
// it is too short to be a secret anyway.
const MinRedacted = 4

// NewRedactor returns a Redactor of the values of config: every value of
// MinRedacted bytes or more that is not blank is replaced, the longer ones
// first, so that a value holding another never leaks its rest.
func NewRedactor(config map[string]string) *Redactor {
	vals := make([]string, 0, len(config))
	seen := map[string]bool{}
	for _, v := range config {
		if len(v) >= MinRedacted && strings.TrimSpace(v) != "" && !seen[v] {
			seen[v] = true
			vals = append(vals, v)
		}
	}
	if len(vals) == 0 {
		return &Redactor{}
	}
	sort.Slice(vals, func(i, j int) bool {
		if len(vals[i]) != len(vals[j]) {
			return len(vals[i]) > len(vals[j])
		}
		return vals[i] < vals[j]
	})
	pairs := make([]string, 0, 2*len(vals))
	for _, v := range vals {
		pairs = append(pairs, v, Redacted)
	}
	return &Redactor{r: strings.NewReplacer(pairs...)}
}

// String returns s with every value replaced.
func (x *Redactor) String(s string) string {
	if x == nil || x.r == nil {
		return s
	}
	return x.r.Replace(s)
}

// Failure returns a copy of f with its output and health answer
// redacted, its output cut to MaxFailureOutput lines and the health body
// to MaxHealthBody bytes; nil for nil.
func (x *Redactor) Failure(f *Failure) *Failure {
	if f == nil {
		return nil
	}
	out := *f
	out.Output = TailLines(f.Output)
	for i, l := range out.Output {
		out.Output[i] = x.String(l)
	}
	if f.Health != nil {
		h := *f.Health
		h.Body = x.String(h.Body)
		if len(h.Body) > MaxHealthBody {
			h.Body = strings.ToValidUTF8(h.Body[:MaxHealthBody], "")
		}
		h.Error = x.String(h.Error)
		out.Health = &h
	}
	return &out
}
