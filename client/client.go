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

// Ref is an {id, name} reference.
type Ref struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

// User is who made a build or release.
type User struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

// App is an app as the API shows it.
type App struct {
	ID           string     `json:"id"`
	Name         string     `json:"name"`
	Key          string     `json:"key"`
	Description  string     `json:"description"`
	Organization Ref        `json:"organization"`
	Space        Ref        `json:"space"`
	CreatedAt    time.Time  `json:"created_at"`
	UpdatedAt    time.Time  `json:"updated_at"`
	ReleasedAt   *time.Time `json:"released_at"`
	WebURL       string     `json:"web_url"`
	Image        *string    `json:"image"`
	Maintenance  bool       `json:"maintenance"`
	GitURL       string     `json:"git_url,omitempty"`
	GitBranch    string     `json:"git_branch,omitempty"`
}

// Build is a build as the API shows it.
type Build struct {
	ID         string    `json:"id"`
	App        Ref       `json:"app"`
	Status     string    `json:"status"`
	Slug       *Ref      `json:"slug"`
	CreatedAt  time.Time `json:"created_at"`
	UpdatedAt  time.Time `json:"updated_at"`
	SourceBlob struct {
		Checksum string `json:"checksum"`
		URL      string `json:"url"`
		Version  string `json:"version"`
		Commit   string `json:"commit"`
		Branch   string `json:"branch"`
		Repo     string `json:"repo"`
	} `json:"source_blob"`
	User            User   `json:"user"`
	OutputStreamURL string `json:"output_stream_url,omitempty"`
}

// BuildResult is a build's status and output lines.
type BuildResult struct {
	Build struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"build"`
	Lines []string `json:"lines"`
}

// Release is a release as the API shows it.
type Release struct {
	ID          string    `json:"id"`
	App         Ref       `json:"app"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
	Description string    `json:"description"`
	Slug        Ref       `json:"slug"`
	Status      string    `json:"status"`
	State       string    `json:"state"`
	User        User      `json:"user"`
	Version     int       `json:"version"`
	Current     bool      `json:"current"`
	Trigger     string    `json:"trigger"`
	Error       string    `json:"error,omitempty"`
	// OutputStreamURL is the path of the release's rollout log.
	OutputStreamURL string `json:"output_stream_url,omitempty"`
}

// ReleaseLog is a release's rollout log.
type ReleaseLog struct {
	Release struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	} `json:"release"`
	Lines []string `json:"lines"`
}

// ReleaseStatus is a check reported on a release.
type ReleaseStatus struct {
	ID          string    `json:"id,omitempty"`
	State       string    `json:"state,omitempty"`
	Name        string    `json:"name,omitempty"`
	Context     string    `json:"context,omitempty"`
	Description string    `json:"description,omitempty"`
	TargetURL   string    `json:"target_url,omitempty"`
	ImageURL    string    `json:"image_url,omitempty"`
	CreatedAt   time.Time `json:"created_at,omitzero"`
	UpdatedAt   time.Time `json:"updated_at,omitzero"`
}

// ReleaseStatuses is a release's checks and their combined state.
type ReleaseStatuses struct {
	State    string          `json:"state"`
	Release  Release         `json:"release"`
	Statuses []ReleaseStatus `json:"statuses"`
}

// Formation is one process type's scale.
type Formation struct {
	Type        string `json:"type"`
	Quantity    int    `json:"quantity"`
	Size        string `json:"size,omitempty"`
	Port        int    `json:"port,omitempty"`
	Command     string `json:"command,omitempty"`
	Healthcheck string `json:"healthcheck,omitempty"`
}

// Dyno is one running process of an app.
type Dyno struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	State   string `json:"state"`
	Ready   bool   `json:"ready"`
	Release struct {
		ID      string `json:"id"`
		Version int    `json:"version"`
	} `json:"release"`
	Command        string    `json:"command"`
	CreatedAt      time.Time `json:"created_at"`
	UpdatedAt      time.Time `json:"updated_at"`
	AdditionalInfo string    `json:"additional_info"`
}

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
	var e struct {
		ID      string `json:"id"`
		Message string `json:"message"`
	}
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(b, &e) != nil || e.ID == "" {
		return nil, &slipway.Error{Code: codeForStatus(resp.StatusCode), Message: fmt.Sprintf("%s %s answered %s", method, path, resp.Status)}
	}
	return nil, &slipway.Error{Code: e.ID, Message: e.Message}
}

func codeForStatus(status int) string {
	switch status {
	case 400:
		return slipway.EInvalid
	case 401:
		return slipway.EUnauthorized
	case 403:
		return slipway.EForbidden
	case 404:
		return slipway.ENotFound
	case 409:
		return slipway.EConflict
	case 413:
		return slipway.ETooLarge
	case 422:
		return slipway.EUnprocessable
	}
	return slipway.EInternal
}

func esc(s string) string { return url.PathEscape(s) }

// CreateApp creates an app in the default org and space unless given.
func (c *Client) CreateApp(ctx context.Context, name, space, org string) (*App, error) {
	var a App
	err := c.Do(ctx, "POST", "/apps", map[string]string{"name": name, "space": space, "org": org}, &a)
	return &a, err
}

// NewApp is an app request. An empty Space means "default"; an empty Org
// means the space's organization ("default" in a shared space), or the
// token's organization for a token limited to one.
type NewApp struct {
	Name        string `json:"name"`
	Space       string `json:"space,omitempty"`
	Org         string `json:"org,omitempty"`
	Description string `json:"description,omitempty"`
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
	return c.Do(ctx, "PATCH", "/apps/"+esc(app)+"/features/"+esc(feature), map[string]bool{"enabled": enabled}, nil)
}

// NewBuild is a build request.
type NewBuild struct {
	URL      string `json:"url"`
	Checksum string `json:"checksum,omitempty"`
	Repo     string `json:"repo,omitempty"`
	SHA      string `json:"sha,omitempty"`
	Branch   string `json:"branch,omitempty"`
	Version  string `json:"version,omitempty"`
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

// NewRelease is a release request: Slug to deploy or Release to roll back to.
type NewRelease struct {
	Slug        string `json:"slug,omitempty"`
	Release     string `json:"release,omitempty"`
	Description string `json:"description,omitempty"`
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

// CreateReleaseStatus reports a check on a release.
func (c *Client) CreateReleaseStatus(ctx context.Context, app, release string, s ReleaseStatus) (*ReleaseStatus, error) {
	var out ReleaseStatus
	err := c.Do(ctx, "POST", "/apps/"+esc(app)+"/releases/"+esc(release)+"/statuses", s, &out)
	return &out, err
}

// UpdateReleaseStatus changes a check on a release.
func (c *Client) UpdateReleaseStatus(ctx context.Context, app, release, id string, s ReleaseStatus) (*ReleaseStatus, error) {
	var out ReleaseStatus
	err := c.Do(ctx, "PATCH", "/apps/"+esc(app)+"/releases/"+esc(release)+"/statuses/"+esc(id), s, &out)
	return &out, err
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

// RestartDynos restarts every dyno (dyno "") or one, rolling.
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
