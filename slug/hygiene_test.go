package slug

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slipway/slipway"
)

// A long source URL is quoted by a short prefix in the build's error and
// log, not whole.
func TestBuild_LongURL_IsClippedInMessages(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	long := strings.Repeat("x", 100<<10)
	var log logLines
	_, err := (&Builder{}).Build(context.Background(), slipway.BuildSource{URL: srv.URL + "/" + long + ".tgz"}, filepath.Join(t.TempDir(), "slug"), log.logf)
	msg := slipway.ErrorMessage(err)
	if slipway.ErrorCode(err) != slipway.EUnprocessable || !strings.Contains(msg, "HTTP 404") {
		t.Fatalf("err = %v", err)
	}
	if out := msg + log.String(); strings.Contains(out, strings.Repeat("x", 100)) {
		t.Errorf("the URL came back whole (%d bytes of message and log)", len(out))
	}
}
