package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/slipway/slipway"
)

// statusByCode is the one table from error codes to HTTP status codes.
var statusByCode = map[string]int{
	slipway.EInvalid:          http.StatusBadRequest,
	slipway.EUnauthorized:     http.StatusUnauthorized,
	slipway.EForbidden:        http.StatusForbidden,
	slipway.ENotFound:         http.StatusNotFound,
	slipway.EMethodNotAllowed: http.StatusMethodNotAllowed,
	slipway.EConflict:         http.StatusConflict,
	slipway.ETooLarge:         http.StatusRequestEntityTooLarge,
	slipway.EUnprocessable:    http.StatusUnprocessableEntity,
	slipway.EInternal:         http.StatusInternalServerError,
	slipway.ENotImplemented:   http.StatusNotImplemented,
}

// StatusCode returns the HTTP status for an error code.
func StatusCode(code string) int {
	if s, ok := statusByCode[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON body of every error answer.
type ErrorBody struct {
	ID      string `json:"id"`
	Message string `json:"message"`
}

// writeError answers with err's code and message; an uncoded error is
// logged with the request id and answered with an opaque 500.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := slipway.ErrorCode(err)
	if code == slipway.EInternal {
		s.log.Error("internal error", "request_id", requestID(r), "method", r.Method, "path", r.URL.Path, "err", err)
	}
	msg := slipway.ErrorMessage(err)
	if code == slipway.EInternal {
		msg = "Internal error; quote request id " + requestID(r) + " when you report it."
	}
	writeJSON(w, StatusCode(code), ErrorBody{ID: code, Message: msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.Encode(v)
}

// decode reads a JSON body of at most limit bytes into v. An empty body,
// bad JSON or a wrong type is EInvalid, an oversize body ETooLarge.
func decode(w http.ResponseWriter, r *http.Request, limit int64, v any) error {
	body := http.MaxBytesReader(w, r.Body, limit)
	dec := json.NewDecoder(body)
	dec.UseNumber()
	err := dec.Decode(v)
	if err == nil {
		if _, err2 := dec.Token(); err2 != io.EOF {
			var mbe *http.MaxBytesError
			if errors.As(err2, &mbe) {
				return slipway.Errorf(slipway.ETooLarge, "The body is larger than %d bytes.", limit)
			}
			return slipway.Errorf(slipway.EInvalid, "The body must hold one JSON value and nothing after it.")
		}
		return nil
	}
	var mbe *http.MaxBytesError
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &mbe):
		return slipway.Errorf(slipway.ETooLarge, "The body is larger than %d bytes.", limit)
	case errors.Is(err, io.EOF):
		return slipway.Errorf(slipway.EInvalid, "The body is empty; send a JSON object.")
	case errors.As(err, &se), errors.Is(err, io.ErrUnexpectedEOF):
		return slipway.Errorf(slipway.EInvalid, "The body is not valid JSON: %s.", strings.TrimPrefix(err.Error(), "json: "))
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return slipway.Errorf(slipway.EInvalid, "The body must be a JSON %s, not %s.", jsonKind(te.Type.Kind().String()), te.Value)
		}
		return slipway.Errorf(slipway.EInvalid, "Field %s must be %s, not %s.", field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return slipway.Errorf(slipway.EInvalid, "The body could not be read as JSON: %s.", strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int64", "float64":
		return "a number"
	case "slice":
		return "an array"
	case "struct", "map", "ptr":
		return "an object"
	}
	return fmt.Sprintf("a %s", goKind)
}
