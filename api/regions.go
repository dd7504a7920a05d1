package api

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/slipway/slipway"
	"github.com/slipway/slipway/wire"
)

// A Slipway server has one region and one stack, both named after its
// runtime ("local" or "kubernetes"): Akkeris clients read an app's
// region and stack, and list them, but a server places every app on the
// one runtime it runs.

// stableID is a UUIDv4-shaped id that is the same on every server and
// every start for the same kind and name, so clients may keep it.
func stableID(kind, name string) string {
	h := sha256.Sum256([]byte("slipway/" + kind + "/" + name))
	h[6] = h[6]&0x0f | 0x40 // version 4
	h[8] = h[8]&0x3f | 0x80 // RFC 4122 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// runtimeName is the server's runtime, which names its region and stack.
func (s *Server) runtimeName() string {
	if s.cfg.RuntimeName == "" {
		return "local"
	}
	return s.cfg.RuntimeName
}

func (s *Server) regionRef() wire.Ref {
	return wire.Ref{ID: stableID("region", s.runtimeName()), Name: s.runtimeName()}
}

func (s *Server) stackRef() wire.Ref {
	return wire.Ref{ID: stableID("stack", s.runtimeName()), Name: s.runtimeName()}
}

// setupTime is when the server's data was set up (the "default"
// organization was made), the creation time of its region and stack.
func (s *Server) setupTime(ctx context.Context) (time.Time, error) {
	o, err := s.st.FindOrganization(ctx, "default")
	if slipway.ErrorCode(err) == slipway.ENotFound {
		return time.Unix(0, 0).UTC(), nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return o.CreatedAt, nil
}

func (s *Server) regionJSON(at time.Time) wire.Region {
	ref := s.regionRef()
	desc := "Dynos run as processes on the Slipway server's machine."
	if ref.Name == "kubernetes" {
		desc = "Dynos run as pods of a Kubernetes cluster."
	}
	return wire.Region{ID: ref.ID, Name: ref.Name, Description: desc,
		Provider:  wire.RegionProvider{Name: ref.Name, AvailabilityZones: []string{}},
		CreatedAt: wire.TimeOf(at), UpdatedAt: wire.TimeOf(at)}
}

func (s *Server) stackJSON(at time.Time) wire.Stack {
	ref := s.stackRef()
	return wire.Stack{ID: ref.ID, Name: ref.Name, Region: s.regionRef(), CreatedAt: wire.TimeOf(at), UpdatedAt: wire.TimeOf(at)}
}

func (s *Server) listRegions(w http.ResponseWriter, r *http.Request) {
	at, err := s.setupTime(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, []wire.Region{s.regionJSON(at)})
}

func (s *Server) getRegion(w http.ResponseWriter, r *http.Request) {
	if ref := s.regionRef(); !namesRef(ref, chi.URLParam(r, "region")) {
		s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "Region %q was not found; this server's one region is %q.", slipway.Clip(chi.URLParam(r, "region")), ref.Name))
		return
	}
	at, err := s.setupTime(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.regionJSON(at))
}

func (s *Server) listStacks(w http.ResponseWriter, r *http.Request) {
	at, err := s.setupTime(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, []wire.Stack{s.stackJSON(at)})
}

func (s *Server) getStack(w http.ResponseWriter, r *http.Request) {
	if ref := s.stackRef(); !namesRef(ref, chi.URLParam(r, "stack")) {
		s.writeError(w, r, slipway.Errorf(slipway.ENotFound, "Stack %q was not found; this server's one stack is %q.", slipway.Clip(chi.URLParam(r, "stack")), ref.Name))
		return
	}
	at, err := s.setupTime(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, s.stackJSON(at))
}

// namesRef reports whether idOrName is ref's id or name.
func namesRef(ref wire.Ref, idOrName string) bool {
	return idOrName == ref.ID || idOrName == ref.Name
}
