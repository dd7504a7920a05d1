package api

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

func (s *Server) createBuild(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	body, file, err := s.readBuildBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	shown, err := displayURL(body.URL)
	if err == nil && (strings.HasPrefix(body.URL, "http://") || strings.HasPrefix(body.URL, "https://")) {
		err = s.checkScopedURL(r, body.URL, "builds")
	}
	var commitTime time.Time
	if err == nil && body.CommitTime != "" {
		if commitTime, err = time.Parse(time.RFC3339, body.CommitTime); err != nil {
			err = slipway.Errorf(slipway.EUnprocessable, "source_blob.commit_time (commit_time) must be an RFC 3339 time such as 2026-11-30T06:53:18Z, not %q.", slipway.Clip(body.CommitTime))
		}
	}
	if err != nil {
		os.Remove(file)
		s.writeError(w, r, err)
		return
	}
	u := currentUser(r)
	b := &slipway.Build{AppID: a.ID, SourceURL: shown, Checksum: body.Checksum, Repo: body.Repo, SHA: body.SHA,
		Branch: body.Branch, Version: body.Version, Author: body.Author, Message: body.Message, UserID: u.ID, UserEmail: u.Email,
		CommitTime: commitTime}
	if err := s.st.CreateBuild(r.Context(), b); err != nil {
		os.Remove(file)
		s.writeError(w, r, err)
		return
	}
	// The engine owns the inline archive's file from here on.
	s.cfg.Engine.StartBuild(b, slipway.BuildSource{URL: body.URL, Checksum: body.Checksum, Scoped: scoped(r), File: file})
	writeJSON(w, http.StatusCreated, buildToJSON(a, b))
}

// displayURL checks a build source's scheme and returns the form that is
// stored and shown: data: URIs shrink to "data:", and user info and query
// strings (where signed URLs keep their signatures) are dropped, so neither
// an archive nor a secret is echoed.
func displayURL(raw string) (string, error) {
	switch {
	case raw == "":
		return "", slipway.Errorf(slipway.EUnprocessable, "url is required: a docker:// image, a data: URI or an http(s):// archive URL.")
	case strings.HasPrefix(raw, "data:"):
		return "data:", nil
	case strings.HasPrefix(raw, "docker://"):
		return raw, nil
	case strings.HasPrefix(raw, "http://"), strings.HasPrefix(raw, "https://"):
		u, err := url.Parse(raw)
		if err != nil || u.Host == "" {
			return "", slipway.Errorf(slipway.EUnprocessable, "url is not a valid http(s) URL.")
		}
		// Signed URLs carry their credentials in the query.
		u.User, u.RawQuery, u.Fragment = nil, "", ""
		return u.String(), nil
	}
	return "", slipway.Errorf(slipway.EUnprocessable, "url must start with docker://, data:, http:// or https://.")
}

func (s *Server) listBuilds(w http.ResponseWriter, r *http.Request) {
	a, ok := s.app(w, r)
	if !ok {
		return
	}
	builds, status, ok := listPage(s, w, r, func(p slipway.Page) ([]*slipway.Build, error) {
		return s.st.ListBuilds(r.Context(), a.ID, p)
	}, func(b *slipway.Build) (time.Time, string) { return b.CreatedAt, b.ID })
	if !ok {
		return
	}
	out := make([]wire.Build, 0, len(builds))
	for _, b := range builds {
		out = append(out, buildToJSON(a, b))
	}
	writeJSON(w, status, out)
}

// build finds the {build} of the path's app, answering 404 itself when
// either is unknown.
func (s *Server) build(w http.ResponseWriter, r *http.Request) (*slipway.App, *slipway.Build, bool) {
	a, ok := s.app(w, r)
	if !ok {
		return nil, nil, false
	}
	b, err := s.st.FindBuild(r.Context(), a.ID, chi.URLParam(r, "build"))
	if err != nil {
		s.writeError(w, r, err)
		return nil, nil, false
	}
	return a, b, true
}

func (s *Server) getBuild(w http.ResponseWriter, r *http.Request) {
	if a, b, ok := s.build(w, r); ok {
		writeJSON(w, http.StatusOK, buildToJSON(a, b))
	}
}

func (s *Server) getBuildResult(w http.ResponseWriter, r *http.Request) {
	_, b, ok := s.build(w, r)
	if !ok {
		return
	}
	lines, err := s.st.BuildLines(r.Context(), b.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.BuildResult{Build: wire.BuildStatus{ID: b.ID, Status: b.Status}, Lines: lines})
}

func (s *Server) cancelBuild(w http.ResponseWriter, r *http.Request) {
	a, b, ok := s.build(w, r)
	if !ok {
		return
	}
	if err := s.cfg.Engine.CancelBuild(r.Context(), b); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, buildToJSON(a, b))
}

func (s *Server) getSlug(w http.ResponseWriter, r *http.Request) {
	sl, err := s.st.FindSlug(r.Context(), chi.URLParam(r, "slug"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	b, err := s.st.FindBuild(r.Context(), sl.AppID, sl.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	a, err := s.st.FindApp(r.Context(), sl.AppID)
	if err != nil || !allowed(r, a.OrgID) {
		s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "Slug %q was not found.", sl.ID))
		return
	}
	bj := buildToJSON(a, b)
	writeJSON(w, http.StatusOK, wire.Slug{ID: sl.ID, ProcessTypes: sl.ProcessTypes, Size: sl.Size, Checksum: sl.Checksum, Image: sl.Image,
		SourceBlob: bj.SourceBlob, CreatedAt: wire.TimeOf(sl.CreatedAt),
		App: bj.App, Buildpacks: bj.Buildpacks, OutputStreamURL: bj.OutputStreamURL, Release: bj.Release, Slug: bj.Slug,
		Status: bj.Status, UpdatedAt: bj.UpdatedAt, User: bj.User})
}

// SlugToken is the token a release's pods present to download its slug:
// an HMAC of the slug and release ids, so it is good for that release only.
func SlugToken(key []byte, slugID, releaseID string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(slugID + "/" + releaseID))
	return hex.EncodeToString(m.Sum(nil))
}

// getSlugBlob serves a slug's files as a .tar.gz to a release's pods:
// GET /slugs/{id}/blob?release=<release id> with the release's slug token
// (or the admin token) as a bearer token.
func (s *Server) getSlugBlob(w http.ResponseWriter, r *http.Request) {
	id, rel := chi.URLParam(r, "slug"), r.URL.Query().Get("release")
	tok := strings.TrimSpace(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	admin := len(s.cfg.Token) > 0 && subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.Token)) == 1
	signed := len(s.cfg.BlobKey) > 0 && rel != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(SlugToken(s.cfg.BlobKey, id, rel))) == 1
	if !admin && !signed {
		s.writeError(w, r, slipway.Errorf(slipway.EUnauthorized, "Downloading a slug needs its release's slug token (or the admin token) and ?release=<release id>."))
		return
	}
	sl, err := s.st.FindSlug(r.Context(), id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if sl.Dir == "" || s.cfg.SlugBlob == nil {
		s.writeError(w, r, slipway.Errorf(slipway.ENotImplemented, "Slug %s has no files to download (an image build, or a server that keeps none).", id))
		return
	}
	w.Header().Set("Content-Type", "application/gzip")
	if err := s.cfg.SlugBlob(w, sl); err != nil {
		s.log.Error("slug blob", "slug", id, "request_id", requestID(r), "err", err)
		panic(http.ErrAbortHandler)
	}
}

// rebuildBuild builds a build's source again as a new build (Akkeris's
// PUT /apps/{app}/builds/{id}) and answers it with 201; the old build is
// left as it was. A docker:// or http(s):// build is fetched again from its
// URL (as stored: without credentials or a query); an inline (data:) build
// from its slug, packed again, so only a succeeded one whose slug has not
// been garbage-collected can be rebuilt (422 otherwise).
func (s *Server) rebuildBuild(w http.ResponseWriter, r *http.Request) {
	a, old, ok := s.build(w, r)
	if !ok {
		return
	}
	if old.Status == slipway.BuildQueued || old.Status == slipway.BuildPending {
		s.writeError(w, r, slipway.Errorf(slipway.EConflict, "Build %s is still %s; rebuild it once it has ended, or stop it with DELETE /apps/%s/builds/%s.", old.ID, old.Status, a.Key(), old.ID))
		return
	}
	src, err := s.rebuildSource(r, old)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	u := currentUser(r)
	b := &slipway.Build{AppID: a.ID, SourceURL: old.SourceURL, Checksum: src.Checksum, Repo: old.Repo, SHA: old.SHA,
		Branch: old.Branch, Version: old.Version, Author: old.Author, Message: old.Message, UserID: u.ID, UserEmail: u.Email}
	if err := s.st.CreateBuild(r.Context(), b); err != nil {
		if src.File != "" {
			os.Remove(src.File)
		}
		s.writeError(w, r, err)
		return
	}
	s.cfg.Engine.StartBuild(b, src)
	writeJSON(w, http.StatusCreated, buildToJSON(a, b))
}

// rebuildSource is the source to build old again from; for an inline
// build, a spool file holding its slug packed again (the caller owns it).
func (s *Server) rebuildSource(r *http.Request, old *slipway.Build) (slipway.BuildSource, error) {
	src := slipway.BuildSource{URL: old.SourceURL, Checksum: old.Checksum, Scoped: scoped(r)}
	switch {
	case strings.HasPrefix(old.SourceURL, "docker://"):
		return src, nil
	case strings.HasPrefix(old.SourceURL, "http://"), strings.HasPrefix(old.SourceURL, "https://"):
		return src, s.checkScopedURL(r, old.SourceURL, "builds")
	case old.SourceURL != "data:":
		return src, slipway.Errorf(slipway.EUnprocessable, "Build %s has no source to rebuild from; push the build again with POST /apps/{app}/builds.", old.ID)
	}
	if old.Status != slipway.BuildSucceeded {
		return src, slipway.Errorf(slipway.EUnprocessable, "Build %s was pushed inline and %s, so there is no archive to rebuild from; push the build again with POST /apps/{app}/builds.", old.ID, old.Status)
	}
	sl, err := s.st.FindSlug(r.Context(), old.ID)
	if slipway.ErrorCode(err) == slipway.ENotFound || err == nil && !dirExists(sl.Dir) || s.cfg.SlugBlob == nil {
		return src, slipway.Errorf(slipway.EUnprocessable, "Build %s was pushed inline and its slug has been garbage-collected, so there is no archive to rebuild from; push the build again with POST /apps/{app}/builds.", old.ID)
	} else if err != nil {
		return src, err
	}
	f, err := os.CreateTemp(s.cfg.SpoolDir, "rebuild-*")
	if err != nil {
		return src, err
	}
	h := sha256.New()
	if err := s.cfg.SlugBlob(io.MultiWriter(f, h), sl); err != nil {
		f.Close()
		os.Remove(f.Name())
		return src, err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return src, err
	}
	src.URL, src.File, src.Checksum = "data:", f.Name(), "sha256:"+hex.EncodeToString(h.Sum(nil))
	return src, nil
}

func dirExists(dir string) bool {
	fi, err := os.Stat(dir)
	return dir != "" && err == nil && fi.IsDir()
}
