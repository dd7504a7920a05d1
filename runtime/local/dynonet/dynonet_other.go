//go:build !linux

package dynonet

import "errors"

// errNeedsLinux is what every namespace operation returns off Linux.
var errNeedsLinux = errors.New("dyno network isolation needs Linux (network namespaces, veth, nftables); run the server on Linux")

// Attach needs Linux; elsewhere it returns an error saying so.
func Attach(pid int, l Lease, o Options) error { return errNeedsLinux }

// Detach needs Linux; elsewhere it returns an error saying so.
func Detach(l Lease) error { return errNeedsLinux }

// Sweep needs Linux; elsewhere it returns an error saying so.
func Sweep(keep []Lease) error { return errNeedsLinux }

// EnableEgress needs Linux; elsewhere it returns an error saying so.
func EnableEgress(p *Pool) error { return errNeedsLinux }

// Fence needs Linux; elsewhere it returns an error saying so.
func Fence(p *Pool) error { return errNeedsLinux }
