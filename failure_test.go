package slipway_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/slipway/slipway"
)

func TestRedactor(t *testing.T) {
	x := slipway.NewRedactor(map[string]string{"A": "s3cret", "B": "s3cret-longer", "C": "2", "D": "    ", "E": ""})
	tests := []struct{ in, want string }{
		{"password s3cret-longer here", "password [redacted] here"},
		{"s3cret and s3cret", "[redacted] and [redacted]"},
		{"Release v2 exited with status 2", "Release v2 exited with status 2"},
		{"no values", "no values"},
	}
	for _, tt := range tests {
		if got := x.String(tt.in); got != tt.want {
			t.Errorf("String(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	var out []string
	for range 25 {
		out = append(out, "line with s3cret")
	}
	f := x.Failure(&slipway.Failure{Phase: slipway.FailHealth, Output: out,
		Health: &slipway.HealthAnswer{Body: strings.Repeat("s3cret ", 100)}})
	if len(f.Output) != slipway.MaxFailureOutput || f.Output[0] != "line with [redacted]" || out[0] != "line with s3cret" {
		t.Errorf("output = %q (given %q)", f.Output, out[0])
	}
	if len(f.Health.Body) != slipway.MaxHealthBody || strings.Contains(f.Health.Body, "s3c") {
		t.Errorf("health body = %q", f.Health.Body)
	}
	if (*slipway.Redactor)(nil).String("s3cret") != "s3cret" || slipway.NewRedactor(nil).Failure(nil) != nil {
		t.Error("a nil or empty redactor changes text")
	}
}

func TestWithFailure_KeepsTheErrorAndCarriesTheFailure(t *testing.T) {
	base := slipway.WithCause(slipway.EUnprocessable, errors.ErrUnsupported, "web.1 crashed.")
	err := slipway.WithFailure(base, &slipway.Failure{Phase: slipway.FailCrash})
	if slipway.ErrorCode(err) != slipway.EUnprocessable || slipway.Message(err) != "web.1 crashed." || !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("err = %v: code %s, message %q", err, slipway.ErrorCode(err), slipway.Message(err))
	}
	if f := slipway.FailureOf(err); f == nil || f.Phase != slipway.FailCrash {
		t.Errorf("FailureOf = %+v", f)
	}
	if slipway.FailureOf(base) != nil || slipway.WithFailure(nil, &slipway.Failure{}) != nil || slipway.WithFailure(base, nil) != base {
		t.Error("WithFailure of nil or without a failure")
	}
}
