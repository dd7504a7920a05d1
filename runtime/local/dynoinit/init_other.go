//go:build !linux

package dynoinit

import (
	"fmt"
	"os"
)

// Main exits at once: dynos need Linux.
func Main() {
	fmt.Fprintln(os.Stderr, "slipway: the dyno init runs on Linux only")
	os.Exit(127)
}
