package api_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/slipway/slipway"
)

// TestConfigVars_Limits sends config vars the runtime could not pass to a
// dyno: each is a 422 naming the key, and nothing of the change is kept.
func TestConfigVars_Limits(t *testing.T) {
	f := newFixture(t)
	// 7 values of 32 KiB: 224 KiB of the app's 256 KiB.
	big := strings.Repeat("v", slipway.MaxConfigValue)
	fill := map[string]string{}
	for i := 1; i <= 7; i++ {
		fill[fmt.Sprintf("BIG%d", i)] = big
	}
	body, _ := json.Marshal(fill)
	if rec := f.do("PATCH", "/apps/hello/config-vars", admin, string(body)); rec.Code != 200 {
		t.Fatalf("7 × 32 KiB: %d %s", rec.Code, rec.Body)
	}
	tests := []struct {
		name, body, wantMsg string
	}{
		{"NUL byte", `{"OK":"fine","TOKEN":"ab\u0000cd"}`, "Config var TOKEN contains a NUL byte"},
		{"value over 32 KiB", `{"OK":"fine","CERT":"` + big + `x"}`, fmt.Sprintf("Config var CERT is %d bytes; a value may be at most 32768 bytes", slipway.MaxConfigValue+1)},
		{"app over 256 KiB", `{"OK":"fine","MORE":"` + big + `"}`, "Setting MORE would bring the app's config vars to"},
		{"app over 256 KiB, largest named", `{"A":"` + big[:100] + `","B":"` + big + `"}`, "Setting B would"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.dump()
			rec := f.do("PATCH", "/apps/hello/config-vars", admin, tt.body)
			if rec.Code != 422 || !strings.Contains(rec.Body.String(), tt.wantMsg) {
				t.Fatalf("%d %s, want 422 with %q", rec.Code, rec.Body, tt.wantMsg)
			}
			if after := f.dump(); after != before {
				t.Errorf("the refused change was written:\nbefore:\n%s\nafter:\n%s", before, after)
			}
		})
	}
	// Exactly at the limits is fine; making room is always possible.
	rest := slipway.MaxConfigTotal - slipway.ConfigSize(fill) - len("LAST")
	if rec := f.do("PATCH", "/apps/hello/config-vars", admin, `{"LAST":"`+strings.Repeat("x", rest)+`"}`); rec.Code != 200 {
		t.Fatalf("up to exactly 256 KiB: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do("PATCH", "/apps/hello/config-vars", admin, `{"BIG1":null,"SMALL":"x"}`); rec.Code != 200 {
		t.Fatalf("making room: %d %s", rec.Code, rec.Body)
	}
}

// manyConfigVars is the inside of a JSON object of n config vars C1…Cn
// of size bytes each.
func manyConfigVars(n, size int) string {
	var items []string
	for i := 1; i <= n; i++ {
		items = append(items, fmt.Sprintf(`"C%d":"%s"`, i, strings.Repeat("v", size)))
	}
	return strings.Join(items, ",")
}

// formationList is a PATCH body creating or scaling types p1…pn.
func formationList(n, quantity int) string {
	var items []string
	for i := 1; i <= n; i++ {
		items = append(items, fmt.Sprintf(`{"type":"p%d","quantity":%d}`, i, quantity))
	}
	return "[" + strings.Join(items, ",") + "]"
}

// TestFormations_Limits asks for more process types and dynos than an
// app and an organization may have: 422 with the limit, nothing written;
// scaling down stays possible.
func TestFormations_Limits(t *testing.T) {
	f := newFixture(t)
	f.db.Limits = slipway.DynoLimits{PerApp: 100, PerOrg: 150}
	step := func(name, method, path, body string, want int, wantMsg string) {
		t.Helper()
		before := f.dump()
		rec := f.do(method, path, admin, body)
		if rec.Code != want || !strings.Contains(rec.Body.String(), wantMsg) {
			t.Fatalf("%s: %d %s, want %d with %q", name, rec.Code, rec.Body, want, wantMsg)
		}
		if after := f.dump(); want >= 400 && after != before {
			t.Errorf("%s: the refused change was written", name)
		}
	}
	step("50 types", "PATCH", "/apps/hello/formation", formationList(50, 0), 200, "")
	step("a 51st type", "POST", "/apps/hello/formation", `{"type":"extra","quantity":0}`, 422, "The app would have 51 process types; an app may have at most 50.")
	step("51 types at once", "PATCH", "/apps/other/formation", formationList(51, 0), 422, "at most 50")
	step("3 types × 34", "PATCH", "/apps/hello/formation", formationList(3, 34), 422, "The app would run 102 dynos; an app may run at most 100 on this server.")
	step("3 types × 33", "PATCH", "/apps/hello/formation", formationList(3, 33), 200, "")
	step("one more", "PATCH", "/apps/hello/formation/p4", `{"quantity":2}`, 422, "would run 101 dynos")
	step("the organization's limit", "PATCH", "/apps/other/formation", `[{"type":"web","quantity":52}]`, 422, "Organization default would run 151 dynos; an organization may run at most 150 on this server.")
	step("up to the organization's limit", "PATCH", "/apps/other/formation", `[{"type":"web","quantity":51}]`, 200, "")
	// An operator lowers the limits below what runs: adding is refused,
	// removing is not.
	f.db.Limits = slipway.DynoLimits{PerApp: 10, PerOrg: 20}
	step("above a lowered limit", "PATCH", "/apps/hello/formation/p1", `{"quantity":34}`, 422, "at most 10")
	step("scaling down above it", "PATCH", "/apps/hello/formation/p1", `{"quantity":1}`, 200, "")
	step("deleting above it", "DELETE", "/apps/hello/formation/p2", ``, 200, "")
}
