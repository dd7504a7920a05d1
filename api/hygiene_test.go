package api_test

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/slipway/slipway/api"
)

// doReader sends a request whose body arrives through r, e.g. one byte
// per Read.
func (f *fixture) doReader(method, path, auth string, r io.Reader) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, r)
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	f.srv.ServeHTTP(rec, req)
	return rec
}

// errorMessage is the message of a JSON error answer; the test fails when
// the answer is not one.
func errorMessage(t *testing.T, rec *httptest.ResponseRecorder) string {
	t.Helper()
	var e api.ErrorBody
	if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.ID == "" || e.Message == "" {
		t.Fatalf("%d %.300q is not a JSON error", rec.Code, rec.Body)
	}
	if api.StatusCode(e.ID) != rec.Code {
		t.Fatalf("error id %s does not match status %d", e.ID, rec.Code)
	}
	return e.Message
}

// A JSON body that is not UTF-8 is refused, not stored with U+FFFD in place
// of what was sent; it does not matter how the bytes are split into reads.
func TestJSONBody_InvalidUTF8IsA400(t *testing.T) {
	f := newFixture(t)
	before := f.dump()
	tests := []struct{ name, body string }{
		{"latin-1 in a value", "{\"description\":\"caf\xe9\"}"},
		{"in a key", "{\"\xff\":\"x\"}"},
		{"overlong slash", "{\"description\":\"\xc0\xaf\"}"},
		{"surrogate half", "{\"description\":\"\xed\xa0\x80\"}"},
		{"cut-off rune at the end", "{\"description\":\"\xe2\x82"},
		{"cut-off rune inside", "{\"description\":\"\xe2\x82\"}"},
		{"after the value", "{\"description\":\"x\"}\n\xff"},
	}
	for _, tt := range tests {
		for _, split := range []string{"whole", "byte by byte"} {
			t.Run(tt.name+"/"+split, func(t *testing.T) {
				var body io.Reader = strings.NewReader(tt.body)
				if split != "whole" {
					body = iotest.OneByteReader(body)
				}
				rec := f.doReader("PATCH", "/apps/hello", admin, body)
				if rec.Code != 400 {
					t.Fatalf("%d %s, want 400", rec.Code, rec.Body)
				}
				if msg := errorMessage(t, rec); !strings.Contains(msg, "not valid UTF-8") {
					t.Errorf("message %q does not say the body is not UTF-8", msg)
				}
			})
		}
	}
	if after := f.dump(); after != before {
		t.Errorf("refused requests changed the store:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// UTF-8 of every length, split anywhere, is kept as sent.
	want := "café ✓ 𝄞 ü"
	for _, split := range []string{"whole", "byte by byte"} {
		var body io.Reader = strings.NewReader(`{"description":"` + want + `"}`)
		if split != "whole" {
			body = iotest.OneByteReader(body)
		}
		if rec := f.doReader("PATCH", "/apps/hello", admin, body); rec.Code != 200 {
			t.Fatalf("%s: %d %s", split, rec.Code, rec.Body)
		}
		var got struct{ Description string }
		json.Unmarshal(f.do("GET", "/apps/hello", admin, "").Body.Bytes(), &got)
		if got.Description != want {
			t.Errorf("%s: description %q, want %q", split, got.Description, want)
		}
	}
}

// Wrong JSON types get a message that says what was expected in words a
// person uses, and quotes at most a short prefix of what was sent.
func TestJSONBody_WrongTypeMessages(t *testing.T) {
	f := newFixture(t)
	long := "1" + strings.Repeat("0", 100000)
	tests := []struct {
		name, method, path, body, want string
	}{
		{"fraction for a whole number", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":1.5}]`, "Field quantity must be a whole number, not 1.5."},
		{"exponent for a whole number", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":1e999}]`, "Field quantity must be a whole number, not 1e999."},
		{"string for a whole number", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":"3"}]`, "Field quantity must be a whole number, not a string."},
		{"whole number out of range", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":99999999999999999999}]`, "Field quantity is out of range: 99999999999999999999."},
		{"long number", "PATCH", "/apps/hello/formation", `[{"type":"web","quantity":` + long + `}]`, "Field quantity is out of range: " + long[:64] + "…."},
		{"number for a string", "POST", "/apps", `{"name":5}`, "Field name must be a string, not a number."},
		{"string for a bool", "PATCH", "/apps/hello", `{"maintenance":"yes"}`, "Field maintenance must be true or false, not a string."},
		{"array for an object", "POST", "/apps", `[1]`, "The body must be an object, not an array."},
		{"object for a config var", "PATCH", "/apps/hello/config-vars", `{"A":{}}`, "Config var A must be a string or null."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := f.do(tt.method, tt.path, admin, tt.body)
			if rec.Code != 400 {
				t.Fatalf("%d %.300s, want 400", rec.Code, rec.Body)
			}
			if msg := errorMessage(t, rec); msg != tt.want {
				t.Errorf("message %q, want %q", msg, tt.want)
			}
		})
	}
}

