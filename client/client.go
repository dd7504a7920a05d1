// Package client is the Go client of Slipway's HTTP API, used by the CLI
// and the end-to-end tests. Errors the server answers come back as
// *slipway.Error with the code of the answer's JSON body.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// Client talks to one Slipway server.
type Client struct {
	// BaseURL is the API's URL, e.g. http://127.0.0.1:5000.
	BaseURL string
	Token   string
	HTTP    *http.Client
	// UserAgent, when set, is sent with every request.
	UserAgent string
}

// New returns a client for the server at baseURL.
func New(baseURL, token string) *Client {
	return &Client{BaseURL: strings.TrimRight(baseURL, "/"), Token: token, HTTP: &http.Client{Timeout: 5 * time.Minute}}
}

// The answers and requests are the types of package wire, which the
// server encodes too; they keep here the names the client has always
// used.
type (
	Ref             = wire.Ref
	AppRef          = wire.AppRef
	IDRef           = wire.IDRef
	User            = wire.User
	App             = wire.App
	Build           = wire.Build
	BuildResult     = wire.BuildResult
	Release         = wire.Release
	ReleaseLog      = wire.ReleaseLog
	ReleaseStatus   = wire.ReleaseStatus
	ReleaseStatuses = wire.ReleaseStatuses
	Formation       = wire.Formation
	Dyno            = wire.Dyno
	Size            = wire.Size
	NewApp          = wire.NewApp
	NewBuild        = wire.NewBuild
	NewRelease      = wire.NewRelease
)

// Do sends a request with a JSON body (nil for none) and decodes a JSON
// answer into out (nil to discard). A non-2xx answer is a *slipway.Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	resp, err := c.send(ctx, method, path, body, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	return nil
}

// Send sends a request and returns the raw response for any 2xx status;
// the caller closes its body. Headers are added to the request.
func (c *Client) Send(ctx context.Context, method, path string, body any, headers http.Header) (*http.Response, error) {
	return c.send(ctx, method, path, body, headers)
}

func (c *Client) send(ctx context.Context, method, path string, body any, headers http.Header) (*http.Response, error) {
	return c.sendWith(ctx, c.HTTP, method, path, body, headers)
}

// sendWith is send through hc, so that a stream can do without the
// client's overall timeout.
func (c *Client) sendWith(ctx context.Context, hc *http.Client, method, path string, body any, headers http.Header) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, rd)
	if err != nil {
		return nil, err
	}
	for k, vs := range headers {
		req.Header[k] = vs
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the Slipway API at %s: %w", c.BaseURL, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	var e wire.ErrorBody
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.ID == "" {
		// An answer without an error body (a proxy's, say): the code
		// comes from the status, by the table the server answers with.
		return nil, &slipway.Error{Code: wire.ErrorCode(resp.StatusCode), Message: fmt.Sprintf("%s %s answered %s", method, path, resp.Status)}
	}
	return nil, &slipway.Error{Code: e.ID, Message: e.Message}
}

func esc(s string) string { return url.PathEscape(s) }

// CreateApp creates an app in the default org and space unless given.
func (c *Client) CreateApp(ctx context.Context, name, space, org string) (*App, error) {
	var a App
	err := c.Do(ctx, "POST", "/apps", NewApp{Name: name, Space: space, Org: org}, &a)
	return &a, err
}

// CreateNewApp creates an app. EUnprocessable for a bad name, EConflict
// when the name is taken in the space, EUnprocessable for an unknown org or
// space or one the token may not use.
func (c *Client) CreateNewApp(ctx context.Context, a NewApp) (*App, error) {
	var out App
	err := c.Do(ctx, "POST", "/apps", a, &out)
	return &out, err
}

// App gets an app by id or key.
func (c *Client) App(ctx context.Context, app string) (*App, error) {
	var a App
	err := c.Do(ctx, "GET", "/apps/"+esc(app), nil, &a)
	return &a, err
}

// Apps lists apps.
func (c *Client) Apps(ctx context.Context) ([]App, error) {
	var out []App
	err := c.Do(ctx, "GET", "/apps", nil, &out)
	return out, err
}

// DeleteApp deletes an app and stops its dynos.
func (c *Client) DeleteApp(ctx context.Context, app string) error {
	return c.Do(ctx, "DELETE", "/apps/"+esc(app), nil, nil)
}

// SetFeature switches an app feature such as "auto-release".
func (c *Client) SetFeature(ctx context.Context, app, feature string, enabled bool) error {
	return c.Do(ctx, "PATCH", "/apps/"+esc(app)+"/features/"+esc(feature), wire.FeatureUpdate{Enabled: &enabled}, nil)
}

// CreateBuild starts a build.
func (c *Client) CreateBuild(ctx context.Context, app string, b NewBuild) (*Build, error) {
	var out Build
	err := c.Do(ctx, "POST", "/apps/"+esc(app)+"/builds", b, &out)
	return &out, err
}

// Build gets a build.
func (c *Client) Build(ctx context.Context, app, id string) (*Build, error) {
	var out Build
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/builds/"+esc(id), nil, &out)
	return &out, err
}

// Builds lists an app's builds.
func (c *Client) Builds(ctx context.Context, app string) ([]Build, error) {
	var out []Build
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/builds", nil, &out)
	return out, err
}

// BuildResult gets a build's output lines.
func (c *Client) BuildResult(ctx context.Context, app, id string) (*BuildResult, error) {
	var out BuildResult
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/builds/"+esc(id)+"/result", nil, &out)
	return &out, err
}

// WaitBuild polls a build until it ends, calling progress with each new line.
func (c *Client) WaitBuild(ctx context.Context, app, id string, progress func(line string)) (*Build, error) {
	seen := 0
	for {
		res, err := c.BuildResult(ctx, app, id)
		if err != nil {
			return nil, err
		}
		for _, l := range res.Lines[min(seen, len(res.Lines)):] {
			if progress != nil {
				progress(l)
			}
		}
		seen = len(res.Lines)
		if s := res.Build.Status; s == slipway.BuildSucceeded || s == slipway.BuildFailed {
			return c.Build(ctx, app, id)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// CreateRelease queues a release.
func (c *Client) CreateRelease(ctx context.Context, app string, r NewRelease) (*Release, error) {
	var out Release
	err := c.Do(ctx, "POST", "/apps/"+esc(app)+"/releases", r, &out)
	return &out, err
}

// Release gets a release by id or vN.
func (c *Client) Release(ctx context.Context, app, id string) (*Release, error) {
	var out Release
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/releases/"+esc(id), nil, &out)
	return &out, err
}

// ReleasesPage gets one page of an app's releases with a Range header such
// as "version ..; order=desc, max=10" ("" for the whole list, oldest
// first). next is the Next-Range of a page that is not the last, else "".
// EInvalid for a malformed range, ENotFound for an unknown app.
func (c *Client) ReleasesPage(ctx context.Context, app, rng string) (rels []Release, next string, err error) {
	return getPage[Release](ctx, c, "/apps/"+esc(app)+"/releases", rng)
}

// BuildsPage gets one page of an app's builds with a Range header such as
// "created_at ..; order=desc, max=10"; next is as for ReleasesPage.
func (c *Client) BuildsPage(ctx context.Context, app, rng string) (builds []Build, next string, err error) {
	return getPage[Build](ctx, c, "/apps/"+esc(app)+"/builds", rng)
}

func getPage[T any](ctx context.Context, c *Client, path, rng string) ([]T, string, error) {
	var h http.Header
	if rng != "" {
		h = http.Header{"Range": {rng}}
	}
	resp, err := c.send(ctx, "GET", path, nil, h)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	var out []T
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, "", fmt.Errorf("GET %s: reading the answer: %w", path, err)
	}
	if resp.StatusCode == http.StatusPartialContent {
		return out, resp.Header.Get("Next-Range"), nil
	}
	return out, "", nil
}

// Releases lists all of an app's releases, oldest first.
func (c *Client) Releases(ctx context.Context, app string) ([]Release, error) {
	var out []Release
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/releases", nil, &out)
	return out, err
}

// ReleaseLog gets a release's rollout log.
func (c *Client) ReleaseLog(ctx context.Context, app, id string) (*ReleaseLog, error) {
	var out ReleaseLog
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/releases/"+esc(id)+"/log", nil, &out)
	return &out, err
}

// FollowReleaseLog streams a release's log lines to fn until the release
// ends. Only ctx bounds the stream: the client's timeout does not apply,
// as a rollout may take longer. ENotFound for an unknown app or release.
func (c *Client) FollowReleaseLog(ctx context.Context, app, id string, fn func(line string)) error {
	hc := http.DefaultClient
	if c.HTTP != nil {
		cp := *c.HTTP
		cp.Timeout = 0
		hc = &cp
	}
	resp, err := c.sendWith(ctx, hc, "GET", "/apps/"+esc(app)+"/releases/"+esc(id)+"/log?follow=true", nil, nil)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	buf := make([]byte, 0, 4096)
	chunk := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(chunk)
		buf = append(buf, chunk[:n]...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			fn(string(buf[:i]))
			buf = buf[i+1:]
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// WaitRelease polls a release until its status is terminal.
func (c *Client) WaitRelease(ctx context.Context, app, id string) (*Release, error) {
	for {
		r, err := c.Release(ctx, app, id)
		if err != nil {
			return nil, err
		}
		if slipway.ReleaseTerminal(r.Status) {
			return r, nil
		}
		if err := sleep(ctx, 25*time.Millisecond); err != nil {
			return nil, err
		}
	}
}

// CreateReleaseStatus reports a check on a release: s's State, Name,
// Context, Description, TargetURL and ImageURL; empty ones are not sent.
func (c *Client) CreateReleaseStatus(ctx context.Context, app, release string, s ReleaseStatus) (*ReleaseStatus, error) {
	var out ReleaseStatus
	err := c.Do(ctx, "POST", "/apps/"+esc(app)+"/releases/"+esc(release)+"/statuses", statusChange(s), &out)
	return &out, err
}

// UpdateReleaseStatus changes a check on a release: the fields of s that
// are not empty.
func (c *Client) UpdateReleaseStatus(ctx context.Context, app, release, id string, s ReleaseStatus) (*ReleaseStatus, error) {
	var out ReleaseStatus
	err := c.Do(ctx, "PATCH", "/apps/"+esc(app)+"/releases/"+esc(release)+"/statuses/"+esc(id), statusChange(s), &out)
	return &out, err
}

// statusChange is the request that sets s's non-empty fields.
func statusChange(s ReleaseStatus) wire.ReleaseStatusChange {
	set := func(v string) *string {
		if v == "" {
			return nil
		}
		return &v
	}
	return wire.ReleaseStatusChange{State: set(s.State), Name: set(s.Name), Context: set(s.Context),
		Description: set(s.Description), TargetURL: set(s.TargetURL), ImageURL: set(s.ImageURL)}
}

// ReleaseStatuses lists a release's checks with their combined state.
func (c *Client) ReleaseStatuses(ctx context.Context, app, release string) (*ReleaseStatuses, error) {
	var out ReleaseStatuses
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/releases/"+esc(release)+"/statuses", nil, &out)
	return &out, err
}

// Formations lists an app's formations.
func (c *Client) Formations(ctx context.Context, app string) ([]Formation, error) {
	var out []Formation
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/formation", nil, &out)
	return out, err
}

// UpdateFormations changes several formations at once.
func (c *Client) UpdateFormations(ctx context.Context, app string, fs []map[string]any) ([]Formation, error) {
	var out []Formation
	err := c.Do(ctx, "PATCH", "/apps/"+esc(app)+"/formation", fs, &out)
	return out, err
}

// Dynos lists an app's dynos.
func (c *Client) Dynos(ctx context.Context, app string) ([]Dyno, error) {
	var out []Dyno
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/dynos", nil, &out)
	return out, err
}

// Dyno gets one dyno, named type.name (web.1) or by its id.
func (c *Client) Dyno(ctx context.Context, app, dyno string) (*Dyno, error) {
	var out Dyno
	return &out, c.Do(ctx, "GET", "/apps/"+esc(app)+"/dyno/"+esc(dyno), nil, &out)
}

// Sizes lists the dyno sizes formations may ask for.
func (c *Client) Sizes(ctx context.Context) ([]Size, error) {
	var out []Size
	return out, c.Do(ctx, "GET", "/sizes", nil, &out)
}

// Rebuild builds a build's source again and returns the new build.
func (c *Client) Rebuild(ctx context.Context, app, id string) (*Build, error) {
	var out Build
	return &out, c.Do(ctx, "PUT", "/apps/"+esc(app)+"/builds/"+esc(id), nil, &out)
}

// RestartDynos restarts, rolling, every dyno (dyno ""), every dyno of a
// process type (dyno "web") or one dyno (dyno "web.1" or its id).
func (c *Client) RestartDynos(ctx context.Context, app, dyno string) error {
	p := "/apps/" + esc(app) + "/dynos"
	if dyno != "" {
		p += "/" + esc(dyno)
	}
	return c.Do(ctx, "DELETE", p, nil, nil)
}

// ConfigVars gets an app's config vars.
func (c *Client) ConfigVars(ctx context.Context, app string) (map[string]string, error) {
	var out map[string]string
	err := c.Do(ctx, "GET", "/apps/"+esc(app)+"/config-vars", nil, &out)
	return out, err
}

// UpdateConfigVars sets (value) and unsets (nil) config vars.
func (c *Client) UpdateConfigVars(ctx context.Context, app string, change map[string]*string) (map[string]string, error) {
	var out map[string]string
	err := c.Do(ctx, "PATCH", "/apps/"+esc(app)+"/config-vars", change, &out)
	return out, err
}
