// Package wire holds Slipway's HTTP contract as Go types: the JSON body of
// every answer and request, the error body, the time format, and the one
// table between error codes and HTTP status codes. The server (package
// api) encodes these types and decodes requests into them; the client
// (package client) does the reverse, so the two cannot drift apart.
//
// It imports only the standard library and the domain package, so that
// the client, and any Go program that talks to Slipway, gets the contract
// without the server and its dependencies. Types carry no behaviour beyond
// their encoding: the server converts domain values to them.
//
// The field order of each type is the order of its JSON keys, and is part
// of the contract: tests compare some answers byte for byte.
package wire

import (
	"net/http"
	"time"

	"github.com/slipway/slipway"
)

// Time is a timestamp as the API writes it: RFC 3339 in UTC with
// milliseconds, 2016-07-19T00:34:21.602Z. It reads any RFC 3339 time.
type Time struct{ time.Time }

// TimeOf returns t as a wire Time.
func TimeOf(t time.Time) Time { return Time{Time: t} }

// TimePtr returns *t as a wire Time, nil for nil.
func TimePtr(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	return &Time{Time: *t}
}

// TimeLayout is the layout of every time the API writes.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// MarshalJSON writes the time in UTC with milliseconds.
func (t Time) MarshalJSON() ([]byte, error) {
	return AppendTime(make([]byte, 0, len(TimeLayout)+2), t.Time), nil
}

// AppendTime appends t as a JSON string the way Time encodes it.
func AppendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"')
}

// Ref is an {id, name} reference to another resource.
type Ref struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// AppRef names an app inside another answer (a release, build, formation,
// dyno, hook, coupling or promotion target): Name is the app's key,
// "<name>-<space>", as Akkeris answers it.
type AppRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// IDRef is an {id} reference.
type IDRef struct {
	ID string `json:"id"`
}

// User is who made a build, a release or an audit entry.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// Message is an answer that only says what happened, such as a restart.
type Message struct {
	Message string `json:"message"`
}

// ErrorBody is the JSON body of every error answer: ID is the error code
// (slipway.EInvalid, …), Message a sentence for the person who sent the
// request.
type ErrorBody struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// statusOfCode is the one table between error codes and HTTP status
// codes. The server answers an error with its code's status; the client
// reads the code from the error body, and from the status when an answer
// has none (a proxy's, say). Each status appears once, so the table reads
// both ways.
var statusOfCode = [...]struct {
	code   string
	status int
}{
	{slipway.EInvalid, http.StatusBadRequest},
	{slipway.EUnauthorized, http.StatusUnauthorized},
	{slipway.EForbidden, http.StatusForbidden},
	{slipway.ENotFound, http.StatusNotFound},
	{slipway.EMethodNotAllowed, http.StatusMethodNotAllowed},
	{slipway.EConflict, http.StatusConflict},
	{slipway.ETooLarge, http.StatusRequestEntityTooLarge},
	{slipway.EUnprocessable, http.StatusUnprocessableEntity},
	{slipway.EInternal, http.StatusInternalServerError},
	{slipway.ENotImplemented, http.StatusNotImplemented},
}

// StatusCode returns the HTTP status of an error code; 500 for a code
// the table does not hold.
func StatusCode(code string) int {
	for _, e := range statusOfCode {
		if e.code == code {
			return e.status
		}
	}
	return http.StatusInternalServerError
}

// ErrorCode returns the error code of an HTTP error status, for an answer
// without an error body; EInternal for a status the table does not hold
// (502 from a proxy, say).
func ErrorCode(status int) string {
	for _, e := range statusOfCode {
		if e.status == status {
			return e.code
		}
	}
	return slipway.EInternal
}
