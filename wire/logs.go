package wire

import "encoding/json"

// NewLogSession is the body of POST /apps/{app}/log-sessions. Lines and
// Tail are raw so that the server can tell a missing field from a wrong
// one and name it.
type NewLogSession struct {
	// Lines is how many of the newest lines the session sends first:
	// 1 to 10,000, default 100.
	Lines json.RawMessage `json:"lines,omitempty"`
	// Tail keeps the session open, sending new lines, default false.
	Tail json.RawMessage `json:"tail,omitempty"`
	// Dyno (Slipway's) limits the session to one dyno (web.1) or one
	// process type (web).
	Dyno string `json:"dyno,omitempty"`
}

// LogSession is the answer to POST /apps/{app}/log-sessions (201).
// LogplexURL streams the logs as text lines without a token: it holds the
// session's secret, which stops opening streams once it expires.
type LogSession struct {
	ID         string `json:"id"`
	LogplexURL string `json:"logplex_url"`
	CreatedAt  Time   `json:"created_at"`
	UpdatedAt  Time   `json:"updated_at"`
}
