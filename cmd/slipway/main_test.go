package main

import (
	"os"
	"testing"

	"github.com/slipway/slipway/runtime/local/dynoinit"
)

// TestMain lets the test binary hold dynos: the runtime starts its own
// binary again as the dyno init.
func TestMain(m *testing.M) {
	if dynoinit.IsInit() {
		dynoinit.Main()
	}
	os.Exit(m.Run())
}
