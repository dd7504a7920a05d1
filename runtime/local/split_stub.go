package local

import "github.com/slipway/slipway"

// trafficSplit is how the router divides an app's web traffic.
type trafficSplit struct {
	canary        string // release id
	canaryVersion int
	weight        int // percent to the canary
	preview       bool
}

func (a *app) setSplit(s *trafficSplit) { a.split.Store(s) }

// Traffic is not measured yet.
func (r *Runtime) Traffic(appID string) map[string]slipway.Traffic { return nil }
