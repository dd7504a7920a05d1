package kube

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	slipway "github.com/slipway/slipway"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/wait"
)

func isForbidden(err error) bool     { return apierrors.IsForbidden(err) }
func isNotFound(err error) bool      { return apierrors.IsNotFound(err) }
func isAlreadyExists(err error) bool { return apierrors.IsAlreadyExists(err) }
func isConflict(err error) bool      { return apierrors.IsConflict(err) }

// apiError turns an error of a Kubernetes API call (verb on resource, in
// namespace ns, object name) into the error a release reports:
//   - the context's end stays an uncoded error that errors.Is finds, so the
//     engine can tell a deadline or a shutdown from a failure;
//   - Forbidden (RBAC, or an admission plugin such as a ResourceQuota)
//     becomes EUnprocessable naming the verb and resource that were refused;
//   - anything else becomes EUnprocessable with the API server's message.
func (r *Runtime) apiError(ctx context.Context, err error, verb, resource, ns, name string) error {
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return fmt.Errorf("kubernetes: %s %s cancelled: %w", verb, resource, context.Cause(ctx))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("kubernetes: %s %s: %w", verb, resource, err)
	}
	where := ""
	if ns != "" {
		where = " in namespace " + ns
	}
	obj := resource
	if name != "" {
		obj = fmt.Sprintf("%s %q", resource, name)
	}
	if apierrors.IsForbidden(err) {
		msg := apiMessage(err)
		if strings.Contains(msg, "exceeded quota") || strings.Contains(msg, "must specify limits") {
			return slipway.Errorf(slipway.EUnprocessable, "Kubernetes refused to %s %s%s: %s", verb, obj, where, msg)
		}
		return slipway.Errorf(slipway.EUnprocessable,
			"Kubernetes refused to %s %s%s: the server's service account lacks the RBAC permission to %q %q. Grant it with the Role in runtime/kube/README.md. (%s)",
			verb, obj, where, verb, resource, msg)
	}
	if apierrors.IsNotFound(err) && ns != "" && strings.Contains(apiMessage(err), "namespaces") {
		return slipway.Errorf(slipway.EUnprocessable, "Kubernetes could not %s %s: the namespace %s does not exist and the server may not create it; create it or grant \"create\" on \"namespaces\".", verb, obj, ns)
	}
	// The cause stays reachable, so that retryBusy can tell an overloaded
	// API server from a refusal.
	return slipway.WithCause(slipway.EUnprocessable, err, fmt.Sprintf("Kubernetes could not %s %s%s: %s", verb, obj, where, apiMessage(err)))
}

// busyBackoff spaces the attempts of a call the API server answered as
// too busy: 0.5 s doubling up to 8 s, six attempts, about 15 s in all.
var busyBackoff = wait.Backoff{Duration: 500 * time.Millisecond, Factor: 2, Jitter: 0.1, Steps: 6, Cap: 8 * time.Second}

// busy reports whether err says the API server could not answer in time
// or asked to be called later, or the connection to it broke: the call
// may succeed if made again. A refusal (forbidden, invalid, conflict) is
// not busy.
func busy(err error) bool {
	return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
		apierrors.IsServiceUnavailable(err) || utilnet.IsConnectionReset(err) || utilnet.IsConnectionRefused(err) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// retryBusy calls fn, an idempotent apply (get, then create or update),
// again while it fails because the API server is busy, within ctx and
// busyBackoff. An overloaded API server (a fleet releasing at once) then
// slows a release down instead of failing it.
func (r *Runtime) retryBusy(ctx context.Context, fn func() error) error {
	b := busyBackoff
	for {
		err := fn()
		if err == nil || !busy(err) || b.Steps <= 1 || ctx.Err() != nil {
			return err
		}
		d := b.Step()
		r.log.Warn("the Kubernetes API server is busy; trying again", "in", d.Round(time.Millisecond), "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// apiMessage is the API server's own message for err.
func apiMessage(err error) string {
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Message != "" {
		return se.Status().Message
	}
	return err.Error()
}

// causeMessage is the user-facing text of a rollout error.
func causeMessage(err error) string { return slipway.Message(err) }

// wrapCause returns an EUnprocessable error with msg that still matches
// cause with errors.Is (so a cancelled context stays detectable) and
// carries cause's slipway.Failure.
func wrapCause(cause error, msg string) error {
	return slipway.WithFailure(slipway.WithCause(slipway.EUnprocessable, cause, msg), slipway.FailureOf(cause))
}
