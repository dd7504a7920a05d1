package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// Log sessions (POST /apps/{app}/log-sessions) are stateless: the answer's
// logplex_url carries the session (app, lines, tail, dyno, expiry) signed
// with Config.LogKey, so any server that shares the key serves it and
// nothing is stored. The URL is
//
//	<scheme>://<host>/log-sessions/<id>?secret=<payload>.<mac>
//
// and its stream is text lines:
//
//	<time> <app key>[<source>.<dyno>]: <text>
//
// with source app (a dyno's output), slipway (the runtime's notes about a
// dyno) or release (a release's rollout log, dyno v<version>).

// Log session limits.
const (
	// DefaultLogLines is the lines a session sends first when the request
	// gives none (Heroku's default).
	DefaultLogLines = 100
	// MaxLogLines is the most a session may ask for.
	MaxLogLines = 10000
	// DefaultLogSessionTTL is how long a session's URL may be opened
	// after it is created.
	DefaultLogSessionTTL = 5 * time.Minute
	// DefaultLogStreamMax bounds one tailing stream; the client opens a
	// new session to go on.
	DefaultLogStreamMax = time.Hour
)

// releaseLogPoll is how often a tailing stream looks for release events.
const releaseLogPoll = 500 * time.Millisecond

var logDynoRE = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,29}(\.[A-Za-z0-9][A-Za-z0-9-]{0,62})?$`)

// logSession is what a session URL carries.
type logSession struct {
	ID      string `json:"i"`
	AppID   string `json:"a"`
	Lines   int    `json:"l"`
	Tail    bool   `json:"t,omitempty"`
	Dyno    string `json:"d,omitempty"`
	Expires int64  `json:"e"` // unix seconds
}

func (s *Server) logMAC(payload string) []byte {
	m := hmac.New(sha256.New, s.logKey)
	m.Write([]byte("log-session\x00" + payload))
	return m.Sum(nil)
}

// createLogSession answers 201 with the session's URL.
func (s *Server) createLogSession(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	var body wire.NewLogSession
	if err := decode(w, r, s.cfg.MaxBody, &body); err != nil {
		s.writeError(w, r, err)
		return
	}
	sess := logSession{ID: uuid.NewString(), AppID: a.ID, Lines: DefaultLogLines, Dyno: body.Dyno}
	if raw := bytes.TrimSpace(body.Lines); len(raw) > 0 && string(raw) != "null" {
		var n json.Number
		if raw[0] == '"' || json.Unmarshal(raw, &n) != nil {
			s.writeError(w, r, slipway.Errorf(slipway.EInvalid, "Field lines must be a whole number, not %s.", slipway.Clip(string(raw))))
			return
		}
		v, err := n.Int64()
		if err != nil || v < 1 || v > MaxLogLines {
			s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "lines must be a whole number from 1 to %d, not %s.", MaxLogLines, slipway.Clip(n.String())))
			return
		}
		sess.Lines = int(v)
	}
	if raw := bytes.TrimSpace(body.Tail); len(raw) > 0 && string(raw) != "null" {
		if json.Unmarshal(raw, &sess.Tail) != nil {
			s.writeError(w, r, slipway.Errorf(slipway.EInvalid, "Field tail must be true or false, not %s.", slipway.Clip(string(raw))))
			return
		}
	}
	if sess.Dyno != "" && !logDynoRE.MatchString(sess.Dyno) {
		s.writeError(w, r, slipway.Errorf(slipway.EUnprocessable, "dyno must name a dyno such as web.1 or a process type such as web, not %q.", slipway.Clip(sess.Dyno)))
		return
	}
	now := time.Now()
	sess.Expires = now.Add(s.cfg.LogSessionTTL).Unix()
	b, _ := json.Marshal(sess)
	payload := base64.RawURLEncoding.EncodeToString(b)
	secret := payload + "." + base64.RawURLEncoding.EncodeToString(s.logMAC(payload))
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	writeJSON(w, http.StatusCreated, wire.LogSession{
		ID: sess.ID, LogplexURL: scheme + "://" + r.Host + "/log-sessions/" + sess.ID + "?secret=" + secret,
		CreatedAt: wire.TimeOf(now), UpdatedAt: wire.TimeOf(now),
	})
}

// openLogSession reads and checks the session of a log URL: ok only for a
// secret this server's key signed, for the path's id, not expired.
func (s *Server) openLogSession(r *http.Request) (logSession, bool) {
	var sess logSession
	payload, mac, ok := strings.Cut(r.URL.Query().Get("secret"), ".")
	if !ok {
		return sess, false
	}
	got, err := base64.RawURLEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, s.logMAC(payload)) {
		return sess, false
	}
	b, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil || json.Unmarshal(b, &sess) != nil {
		return sess, false
	}
	return sess, sess.ID == chi.URLParam(r, "session") && time.Now().Unix() < sess.Expires
}

// streamLogSession serves a session's URL: its newest lines of dyno output
// and release events (none for a session of one dyno or type), merged by
// time, then, for a tailing session, new lines as they come, until the
// client goes away or LogStreamMax passes.
func (s *Server) streamLogSession(w http.ResponseWriter, r *http.Request) {
	sess, ok := s.openLogSession(r)
	var a *slipway.App
	if ok {
		var err error
		if a, err = s.st.FindApp(r.Context(), sess.AppID); err != nil {
			ok = false
		}
	}
	if !ok {
		s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "This log session does not exist or has expired (a session's URL can be opened for %s after it is created); create a new one with POST /apps/{app}/log-sessions (slipway logs -a APP).", fmtTTL(s.cfg.LogSessionTTL)))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.LogStreamMax)
	defer cancel()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	flusher, _ := w.(http.Flusher)
	key := a.Key()
	write := func(lines []slipway.LogLine) error {
		var buf []byte
		for _, l := range lines {
			buf = appendLogLine(buf, key, l)
		}
		if _, err := w.Write(buf); err != nil {
			return err
		}
		if flusher != nil {
			flusher.Flush()
		}
		return nil
	}

	// A session of one dyno or type shows only its output; release
	// events belong to the whole app.
	rel := &releaseEvents{s: s, appID: a.ID, after: map[string]int64{}, off: sess.Dyno != ""}
	events := rel.tail(ctx, sess.Lines)
	src, _ := s.cfg.Runtime.(slipway.LogSource)
	if src == nil {
		if err := write(events); err != nil || !sess.Tail {
			return
		}
		rel.follow(ctx, write)
		return
	}
	q := slipway.LogQuery{Lines: sess.Lines, Dyno: sess.Dyno, Follow: sess.Tail}
	// The runtime's first batch is its tail: merged with the release
	// events' own; then its new lines are written as they come while
	// release events are polled beside them. Writes are serialized.
	lines := make(chan []slipway.LogLine)
	done := make(chan error, 1)
	first := true
	go func() {
		done <- src.Logs(ctx, a.ID, q, func(ls []slipway.LogLine) error {
			if first {
				first = false
				merged := append(ls, events...)
				sort.SliceStable(merged, func(i, j int) bool { return merged[i].Time.Before(merged[j].Time) })
				if len(merged) > sess.Lines {
					merged = merged[len(merged)-sess.Lines:]
				}
				ls = merged
			}
			select {
			case lines <- ls:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	}()
	var tick <-chan time.Time
	if sess.Tail {
		t := time.NewTicker(releaseLogPoll)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case ls := <-lines:
			if err := write(ls); err != nil {
				cancel()
				<-done
				return
			}
		case err := <-done:
			if err != nil && ctx.Err() == nil {
				s.log.Warn("log session", "app", a.ID, "request_id", requestID(r), "err", err)
			}
			if first { // the runtime failed before its tail: the release events still go out
				write(events)
			}
			return
		case <-tick:
			if err := write(rel.next(ctx)); err != nil {
				cancel()
				<-done
				return
			}
		}
	}
}

// appendLogLine appends "<time> <key>[<source>.<dyno>]: <text>\n".
func appendLogLine(b []byte, key string, l slipway.LogLine) []byte {
	t := l.Time
	if t.IsZero() {
		t = time.Now()
	}
	b = t.UTC().AppendFormat(b, wire.TimeLayout)
	b = append(b, ' ')
	b = append(b, key...)
	b = append(b, '[')
	b = append(b, l.Source...)
	b = append(b, '.')
	b = append(b, l.Dyno...)
	b = append(b, "]: "...)
	b = append(b, strings.ReplaceAll(l.Text, "\n", " ")...)
	return append(b, '\n')
}

// releaseEvents reads the log lines of an app's releases.
type releaseEvents struct {
	s     *Server
	appID string
	after map[string]int64 // per release id, the last line read
	off   bool             // none wanted
}

// releaseEventReleases bounds how many of the newest releases a session
// reads events of.
const releaseEventReleases = 20

// tail returns the newest n lines of the app's newest releases, oldest
// first, and marks everything there is as read.
func (e *releaseEvents) tail(ctx context.Context, n int) []slipway.LogLine {
	var out []slipway.LogLine
	if e.off {
		return nil
	}
	rels := e.releases(ctx, releaseEventReleases)
	for _, rel := range rels { // newest first
		lines, err := e.s.st.ReleaseLog(ctx, rel.ID, 0)
		if err != nil {
			continue
		}
		if len(lines) > 0 {
			e.after[rel.ID] = lines[len(lines)-1].Seq
		}
		if len(out) < n {
			out = append(toLogLines(rel, lines), out...)
		}
	}
	if len(out) > n {
		out = out[len(out)-n:]
	}
	return out
}

// next returns the lines written since the last call, of the newest few
// releases (a session sees the releases made while it runs).
func (e *releaseEvents) next(ctx context.Context) []slipway.LogLine {
	var out []slipway.LogLine
	if e.off {
		return nil
	}
	rels := e.releases(ctx, 3)
	for i := len(rels) - 1; i >= 0; i-- {
		rel := rels[i]
		lines, err := e.s.st.ReleaseLog(ctx, rel.ID, e.after[rel.ID])
		if err != nil || len(lines) == 0 {
			continue
		}
		e.after[rel.ID] = lines[len(lines)-1].Seq
		out = append(out, toLogLines(rel, lines)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Time.Before(out[j].Time) })
	return out
}

// follow writes new release events until ctx ends or write fails.
func (e *releaseEvents) follow(ctx context.Context, write func([]slipway.LogLine) error) {
	t := time.NewTicker(releaseLogPoll)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if write(e.next(ctx)) != nil {
				return
			}
		}
	}
}

// releases returns the app's newest n releases, newest first.
func (e *releaseEvents) releases(ctx context.Context, n int) []*slipway.Release {
	var out []*slipway.Release
	e.s.st.ListReleases(ctx, e.appID, slipway.Page{Field: "version", Desc: true, Max: n}, func(r *slipway.Release) error {
		out = append(out, r)
		return nil
	})
	return out
}

func toLogLines(rel *slipway.Release, lines []slipway.ReleaseLogLine) []slipway.LogLine {
	out := make([]slipway.LogLine, 0, len(lines))
	dyno := "v" + strconv.Itoa(rel.Version)
	for _, l := range lines {
		out = append(out, slipway.LogLine{Time: l.Time, Source: slipway.LogSourceRelease, Dyno: dyno, Text: l.Line})
	}
	return out
}

// fmtTTL writes a session lifetime for people: 5 minutes, 3 seconds.
func fmtTTL(d time.Duration) string {
	if d%time.Minute == 0 {
		if d == time.Minute {
			return "1 minute"
		}
		return strconv.Itoa(int(d/time.Minute)) + " minutes"
	}
	return d.Round(time.Second).String()
}
