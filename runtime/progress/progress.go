// Package progress delivers the progress events of one runtime operation
// (a Deploy, a Split, a Restart) to the engine's ProgressFunc, the same
// way for every runtime.
package progress

import (
	"fmt"
	"log/slog"
	"sync"

	"github.com/slipway/slipway"
)

// Reporter delivers one operation's progress events. Calls to the
// ProgressFunc are serialized (process types converge in parallel), every
// event is also logged at debug level, and events after Close are only
// logged (a dyno's supervisor or a watch can outlive the operation that
// started it).
type Reporter struct {
	mu     sync.Mutex
	fn     slipway.ProgressFunc
	log    *slog.Logger
	app    string
	closed bool
}

// New returns a Reporter for the app's operation; fn may be nil.
func New(fn slipway.ProgressFunc, log *slog.Logger, appID string) *Reporter {
	return &Reporter{fn: fn, log: log, app: appID}
}

// Emit reports an event; format and args make its message.
func (rp *Reporter) Emit(typ, dyno, process, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	rp.log.Debug(msg, "app", rp.app, "event", typ, "dyno", dyno)
	rp.mu.Lock()
	defer rp.mu.Unlock()
	if rp.fn != nil && !rp.closed {
		rp.fn(slipway.ProgressEvent{Type: typ, Dyno: dyno, Process: process, Message: msg})
	}
}

// Close ends the operation: later events are only logged.
func (rp *Reporter) Close() {
	rp.mu.Lock()
	rp.closed = true
	rp.mu.Unlock()
}
