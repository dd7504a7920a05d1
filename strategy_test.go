package slipway_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slipway/slipway"
)

func TestStrategy_Validate(t *testing.T) {
	for _, tc := range []struct {
		body string
		want string // a part of the 422 message; "" when valid
	}{
		{`{}`, ""},
		{`{"type":"rolling"}`, ""},
		{`{"type":"canary","steps":[{"weight":10,"pause":"2m"},{"weight":50,"pause":"until-checks"},{"weight":100}],"analysis":{"max_error_rate":0.01,"max_p99_ms":800,"min_requests":50,"interval":"15s"},"required_checks":["ci/smoke"]}`, ""},
		{`{"type":"blue-green","preview":true,"auto_promote":false,"scale_down_delay":"5m","required_checks":["ci/smoke"]}`, ""},
		{`{"type":"canary","steps":[{"weight":10}],"types":{"worker":{"type":"rolling"}}}`, ""},
		{`{"type":"linear"}`, "type must be one of rolling, canary, blue-green"},
		{`{"type":"canary"}`, "steps must list at least one step"},
		{`{"type":"canary","steps":[{"weight":0}]}`, "steps[0].weight must be 1 to 100"},
		{`{"type":"canary","steps":[{"weight":50},{"weight":10}]}`, "steps[1].weight must not be less than"},
		{`{"type":"canary","steps":[{"weight":10,"pause":"soon"}]}`, "steps[0].pause must be a duration"},
		{`{"type":"canary","steps":[{"weight":10,"pause":"until-checks"}]}`, "required_checks must name at least one"},
		{`{"type":"canary","steps":[{"weight":10}],"analysis":{"max_error_rate":2}}`, "analysis.max_error_rate must be from 0 to 1"},
		{`{"type":"canary","steps":[{"weight":10}],"analysis":{"min_requests":5}}`, "analysis must set max_error_rate or max_p99_ms"},
		{`{"type":"canary","steps":[{"weight":10}],"analysis":{"max_p99_ms":100,"interval":"10ms"}}`, "analysis.interval must be from 1s to 1h"},
		{`{"type":"canary","steps":[{"weight":10}],"required_checks":["ci"]}`, "required_checks[0] must be a check context"},
		{`{"type":"canary","steps":[{"weight":10}],"required_checks":["ci/smoke","ci/smoke"]}`, "required_checks[1] repeats"},
		{`{"type":"rolling","steps":[{"weight":10}]}`, "type is rolling, which takes none of"},
		{`{"type":"blue-green","steps":[{"weight":10}]}`, "type is blue-green, which takes neither"},
		{`{"type":"blue-green","scale_down_delay":"-1s"}`, "scale_down_delay must be from 0"},
		{`{"type":"rolling","rollbacks":"never"}`, "rollbacks must be"},
		{`{"type":"rolling","types":{"worker":{"type":"blue-green"}}}`, "types.worker.type is blue-green, which needs traffic"},
		{`{"type":"rolling","types":{"worker":{"type":"canary","steps":[{"weight":300}]}}}`, "types.worker.steps[0].weight"},
		{`{"type":"rolling","types":{"Bad Type":{}}}`, "types names"},
	} {
		var s slipway.Strategy
		if err := json.Unmarshal([]byte(tc.body), &s); err != nil {
			t.Fatalf("%s: %v", tc.body, err)
		}
		err := s.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v, want valid", tc.body, err)
		case tc.want != "" && (slipway.ErrorCode(err) != slipway.EUnprocessable || !strings.Contains(slipway.ErrorMessage(err), tc.want)):
			t.Errorf("%s: %v, want a 422 containing %q", tc.body, err, tc.want)
		}
	}
}

func TestStrategy_Defaults(t *testing.T) {
	var s slipway.Strategy
	if err := json.Unmarshal([]byte(`{"type":"canary","steps":[{"weight":10}],"analysis":{"max_error_rate":0.05}}`), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(s)
	if !strings.Contains(string(b), `"interval":"15s"`) {
		t.Fatalf("stored %s, want the default analysis interval of 15s", b)
	}
	if w := s.ForType("worker"); w.Type != slipway.StrategyCanary {
		t.Fatalf("worker follows %s, want the app's canary", w.Type)
	}
}

func TestValidateName_SpaceWithDoubleDash(t *testing.T) {
	if err := slipway.ValidateName("space", "blue--green"); slipway.ErrorCode(err) != slipway.EUnprocessable || !strings.Contains(err.Error(), "preview hosts") {
		t.Fatalf("space blue--green: %v, want 422 naming preview hosts", err)
	}
	if err := slipway.ValidateName("pipeline", "blue--green"); err != nil {
		t.Fatalf("pipeline blue--green: %v, want valid", err)
	}
}
