// Package slipway holds Slipway's domain: the types every other package
// shares, the interfaces they meet through, and the one error type whose
// code the HTTP layer maps to a status. It imports nothing of the project.
package slipway

import (
	"errors"
	"fmt"
)

// Error codes. They are the `id` of the API's JSON error body; the HTTP layer
// holds the one table that maps each to a status code.
const (
	EInvalid          = "bad_request"          // unparseable JSON, wrong types (400)
	EUnauthorized     = "unauthorized"         // no or wrong token (401)
	EForbidden        = "forbidden"            // token not allowed here (403)
	ENotFound         = "not_found"            // no such resource (404)
	EConflict         = "conflict"             // the resource is not in a state that allows this (409)
	ETooLarge         = "payload_too_large"    // body or archive over its limit (413)
	EUnprocessable    = "unprocessable_entity" // well-formed but not allowed (422)
	EInternal         = "internal"             // anything else; never shown to a user in detail (500)
	ENotImplemented   = "not_implemented"      // the runtime cannot do this (501)
	EMethodNotAllowed = "method_not_allowed"   // wrong HTTP method on a known path (405)
)

// Error is Slipway's one error type: a code from the list above and a
// message written for the person who sent the request.
type Error struct {
	Code    string
	Message string
}

func (e *Error) Error() string { return fmt.Sprintf("slipway: %s: %s", e.Code, e.Message) }

// Errorf returns an *Error with the code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the code of the first *Error in err's chain, EInternal
// for any other non-nil error, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// ErrorMessage returns the message of the first *Error in err's chain, or a
// generic message for an uncoded error, so internals never reach a user.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Internal error."
}

// WithCause returns an *Error with the code and message that also
// unwraps to cause when cause carries no code of its own, so errors.Is
// still finds a context.Canceled or DeadlineExceeded behind a message
// written for a person.
func WithCause(code string, cause error, message string) error {
	e := &Error{Code: code, Message: message}
	var coded *Error
	if cause == nil || errors.As(cause, &coded) {
		return e
	}
	return &causedError{err: e, cause: cause}
}

// causedError is an *Error that also unwraps to what caused it.
type causedError struct {
	err   *Error
	cause error
}

func (c *causedError) Error() string   { return c.err.Error() }
func (c *causedError) Unwrap() []error { return []error{c.err, c.cause} }

// Message returns the message of the first *Error in err's chain, or
// err's own text: for messages between packages, not for HTTP answers
// (those use ErrorMessage, which never shows an uncoded error).
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}
