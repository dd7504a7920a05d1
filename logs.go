package slipway

import (
	"context"
	"time"
)

// Log line sources, the part before the dyno in a log session's
// "<app-key>[<source>.<dyno>]" (see LogLine).
const (
	LogSourceApp     = "app"     // what a dyno's command printed
	LogSourceSlipway = "slipway" // the runtime's notes about a dyno (started, on which port)
	LogSourceRelease = "release" // a release's rollout log; Dyno is "v<version>"
)

// LogLine is one line of an app's logs.
type LogLine struct {
	Time   time.Time
	Source string // one of the LogSource constants
	Dyno   string // the dyno's name, such as web.1 (v3 for release lines)
	Text   string // without its newline
}

// LogQuery says which of an app's dyno output to read.
type LogQuery struct {
	// Lines is how many of the newest lines come first, oldest of them
	// first; 0 sends none.
	Lines int
	// Dyno, when set, reads only that dyno (a name such as web.1) or, with
	// no dot, the dynos of that process type.
	Dyno string
	// Follow sends new lines as they are written, until the context ends.
	Follow bool
}

// LogSource is a Runtime that keeps its dynos' output. The API serves log
// sessions from it; a runtime without it has only release events to show.
type LogSource interface {
	// Logs calls fn once with the app's newest q.Lines lines of output
	// across its dynos (or those q.Dyno names), oldest first (none is an
	// empty batch, not an error), then, with q.Follow, with each batch of
	// new lines until ctx ends or fn returns an error (which Logs returns).
	// The first call marks the end of what was written before: a caller
	// merging other lines (release events) sorts the first batch with its
	// own.
	Logs(ctx context.Context, appID string, q LogQuery, fn func([]LogLine) error) error
}
