package progress_test

import (
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/runtime/progress"
)

func TestReporter_SerializesAndStopsAtClose(t *testing.T) {
	var (
		inside bool
		got    []string
	)
	rep := progress.New(func(ev slipway.ProgressEvent) {
		if inside {
			t.Error("two events delivered at once")
		}
		inside = true
		got = append(got, ev.Message)
		inside = false
	}, slog.New(slog.NewTextHandler(io.Discard, nil)), "app")
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { rep.Emit(slipway.EventInfo, "web.1", "web", "event %d", i) })
	}
	wg.Wait()
	rep.Close()
	rep.Emit(slipway.EventInfo, "", "", "after close")
	if len(got) != 50 {
		t.Fatalf("%d events delivered, want the 50 before Close", len(got))
	}
}
