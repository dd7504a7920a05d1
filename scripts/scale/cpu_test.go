package main

import (
	"strings"
	"testing"
)

// TestReadCPU: this test's own process is counted as the driver's, and a
// phase's line names it.
func TestReadCPU(t *testing.T) {
	a := readCPU()
	x := 0
	for i := range 20_000_000 {
		x += i % 7
	}
	b := readCPU()
	if b.by["this driver"] <= a.by["this driver"] && x >= 0 {
		t.Skipf("no CPU time counted for this process (/proc not readable?): %v", b.by)
	}
	if line := cpuLine(a, b, 1, 1, 2); !strings.Contains(line, "this driver") || !strings.Contains(line, "busy") {
		t.Errorf("cpuLine = %q", line)
	}
}
