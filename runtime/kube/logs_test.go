package kube

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stesting "k8s.io/client-go/testing"

	slipway "github.com/slipway/slipway"
)

func TestLogs_ReadsPodLogsThroughTheAPI(t *testing.T) {
	h := newHarness(t, nil)
	h.mustDeploy(release(1, "hello:v1", nil, web(2), slipway.Formation{Type: "worker", Quantity: 1}))
	ds := h.waitPods(3)
	ctx := context.Background()
	read := func(q slipway.LogQuery) []slipway.LogLine {
		t.Helper()
		var out []slipway.LogLine
		if err := h.rt.Logs(ctx, appID, q, func(ls []slipway.LogLine) error { out = append(out, ls...); return nil }); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// The fake clientset answers every log request "fake logs": one
	// unstamped line per pod, named after its dyno.
	got := read(slipway.LogQuery{Lines: 10})
	if len(got) != 3 {
		t.Fatalf("tail of 3 pods = %+v, want a line each", got)
	}
	names := map[string]bool{}
	for _, d := range ds {
		names[d.Type+"."+strings.TrimPrefix(d.Name, d.Type+".")] = true
	}
	for _, l := range got {
		if l.Text != "fake logs" || l.Source != slipway.LogSourceApp || !names[l.Dyno] {
			t.Errorf("line %+v, want fake logs of one of %v", l, names)
		}
	}

	// Stamped lines, two per request, later for each request: the tail
	// merges the pods by time and keeps the newest.
	var mu sync.Mutex
	var calls []*corev1.PodLogOptions
	base := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC)
	h.cl.Clientset.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		opts := a.(k8stesting.GenericAction).GetValue().(*corev1.PodLogOptions)
		mu.Lock()
		calls = append(calls, opts)
		k := len(calls)
		mu.Unlock()
		at := func(s int) string { return base.Add(time.Duration(s) * time.Second).Format(time.RFC3339Nano) }
		body := fmt.Sprintf("%s call %d first\n%s call %d second\n", at(k), k, at(k+10), k)
		if opts.Follow {
			body = fmt.Sprintf("%s followed %d\n", at(100+k), k)
		}
		return true, &runtime.Unknown{Raw: []byte(body)}, nil
	})
	got = read(slipway.LogQuery{Lines: 3, Dyno: "web"})
	var texts []string
	for _, l := range got {
		texts = append(texts, l.Text)
	}
	if strings.Join(texts, ",") != "call 2 first,call 1 second,call 2 second" {
		t.Errorf("3 lines of web = %q, want the newest three of both web pods", texts)
	}
	if len(calls) != 2 {
		t.Fatalf("%d log requests for the web type, want one per web pod", len(calls))
	}
	for _, o := range calls {
		if o.TailLines == nil || *o.TailLines != 3 || !o.Timestamps || o.Container == "" || o.Follow {
			t.Errorf("tail request %+v, want TailLines 3, timestamps, the container", o)
		}
	}

	// Follow: a stream per pod, since the session began, until fn stops.
	mu.Lock()
	calls = nil
	mu.Unlock()
	fctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var followed []string
	stop := errors.New("stop")
	err := h.rt.Logs(fctx, appID, slipway.LogQuery{Dyno: "worker", Follow: true}, func(ls []slipway.LogLine) error {
		for _, l := range ls {
			followed = append(followed, l.Dyno+": "+l.Text)
		}
		if len(followed) > 0 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || len(followed) != 1 || !strings.HasPrefix(followed[0], "worker.") || !strings.HasSuffix(followed[0], "followed 1") {
		t.Fatalf("follow of worker = %v, %q; want the worker's followed line", err, followed)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || !calls[0].Follow || !calls[0].Timestamps || calls[0].SinceTime == nil || calls[0].Container == "" {
		t.Errorf("follow requests %+v, want one, following with timestamps since the session began", calls)
	}

	// An app the runtime never placed has no logs.
	var n int
	if err := h.rt.Logs(ctx, "no-such-app", slipway.LogQuery{Lines: 5}, func(ls []slipway.LogLine) error { n += len(ls); return nil }); err != nil || n != 0 {
		t.Errorf("logs of an unknown app: %d lines, %v", n, err)
	}
}
