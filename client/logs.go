package client

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// LogSession is the answer to creating a log session.
type LogSession = wire.LogSession

// CreateLogSession opens a log session of the app: its URL streams the
// newest lines (1 to 10,000; 0 asks for the server's default) and, with
// tail, what follows. dyno limits it to one dyno (web.1) or process type
// (web). ENotFound for an unknown app; EUnprocessable for lines or dyno
// out of range.
func (c *Client) CreateLogSession(ctx context.Context, app string, lines int, tail bool, dyno string) (*LogSession, error) {
	body := map[string]any{"tail": tail}
	if lines != 0 {
		body["lines"] = lines
	}
	if dyno != "" {
		body["dyno"] = dyno
	}
	var s LogSession
	if err := c.Do(ctx, "POST", "/apps/"+esc(app)+"/log-sessions", body, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// StreamLogs reads a log session's URL, which needs no token (none is
// sent), and calls fn with each line until the stream ends or ctx does.
// Only ctx bounds it: the client's timeout does not apply. ENotFound for
// a session whose secret is wrong or has expired.
func (c *Client) StreamLogs(ctx context.Context, url string, fn func(line string)) error {
	hc := http.DefaultClient
	if c.HTTP != nil {
		cp := *c.HTTP
		cp.Timeout = 0
		hc = &cp
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	if c.UserAgent != "" {
		req.Header.Set("User-Agent", c.UserAgent)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the log session's URL: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		var e wire.ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		if json.Unmarshal(b, &e) != nil || e.ID == "" {
			return &slipway.Error{Code: wire.ErrorCode(resp.StatusCode), Message: "the log session's URL answered " + resp.Status}
		}
		return &slipway.Error{Code: e.ID, Message: e.Message}
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fn(sc.Text())
	}
	if ctx.Err() != nil {
		return nil
	}
	return sc.Err()
}
