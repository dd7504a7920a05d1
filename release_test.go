package slipway

import "testing"

// TestReleaseTransitionAllowed holds the release state machine to every
// pair of statuses: queued → pending → succeeded | failed | unknown, and
// queued → failed (a release superseded or aborted before it started).
// Nothing leaves an end state, nothing moves back, and nothing moves to
// itself.
func TestReleaseTransitionAllowed(t *testing.T) {
	statuses := []string{ReleaseQueued, ReleasePending, ReleaseSucceeded, ReleaseFailed, ReleaseUnknown, "", "bogus"}
	allowed := map[[2]string]bool{
		{ReleaseQueued, ReleasePending}:    true,
		{ReleaseQueued, ReleaseFailed}:     true,
		{ReleasePending, ReleaseSucceeded}: true,
		{ReleasePending, ReleaseFailed}:    true,
		{ReleasePending, ReleaseUnknown}:   true,
	}
	for _, from := range statuses {
		for _, to := range statuses {
			want := allowed[[2]string{from, to}]
			if got := ReleaseTransitionAllowed(from, to); got != want {
				t.Errorf("ReleaseTransitionAllowed(%q, %q) = %v, want %v", from, to, got, want)
			}
		}
	}
	for _, s := range statuses {
		want := s == ReleaseSucceeded || s == ReleaseFailed || s == ReleaseUnknown
		if got := ReleaseTerminal(s); got != want {
			t.Errorf("ReleaseTerminal(%q) = %v, want %v", s, got, want)
		}
		// An end state allows no transition at all.
		for _, to := range statuses {
			if ReleaseTerminal(s) && ReleaseTransitionAllowed(s, to) {
				t.Errorf("terminal %q may move to %q", s, to)
			}
		}
	}
}
