package api

import (
	"encoding/json"
	"time"

	"github.com/slipway/slipway"
)

// Time formats timestamps as the API does: RFC 3339, UTC, milliseconds.
type Time time.Time

// MarshalJSON writes 2016-07-19T00:34:21.602Z.
func (t Time) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Time(t).UTC().Format("2006-01-02T15:04:05.000Z"))
}

func timePtr(t *time.Time) *Time {
	if t == nil {
		return nil
	}
	v := Time(*t)
	return &v
}

type ref struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
}

type idRef struct {
	ID string `json:"id"`
}

type user struct {
	ID    string `json:"id"`
	Email string `json:"email"`
}

type spaceRef struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Compliance []string `json:"compliance"`
}

type appJSON struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Key          string   `json:"key"`
	Description  string   `json:"description"`
	Organization ref      `json:"organization"`
	Space        spaceRef `json:"space"`
	CreatedAt    Time     `json:"created_at"`
	UpdatedAt    Time     `json:"updated_at"`
	ReleasedAt   *Time    `json:"released_at"`
	WebURL       string   `json:"web_url"`
	Image        *string  `json:"image"`
	Maintenance  bool     `json:"maintenance"`
	GitURL       string   `json:"git_url"`
	GitBranch    string   `json:"git_branch"`
}

func (s *Server) appJSON(a *slipway.App) appJSON {
	j := appJSON{
		ID: a.ID, Name: a.Name, Key: a.Key(), Description: a.Description,
		Organization: ref{ID: a.OrgID, Name: a.OrgName},
		Space:        spaceRef{ID: a.SpaceID, Name: a.SpaceName, Compliance: a.Compliance},
		CreatedAt:    Time(a.CreatedAt), UpdatedAt: Time(a.UpdatedAt), ReleasedAt: timePtr(a.ReleasedAt),
		WebURL: s.cfg.WebURL(a.Key()), Maintenance: a.Maintenance, GitURL: a.GitURL, GitBranch: a.GitBranch,
	}
	if a.CurrentImage != "" {
		img := a.CurrentImage
		j.Image = &img
	}
	return j
}

type sourceBlob struct {
	Checksum string `json:"checksum"`
	URL      string `json:"url"`
	Version  string `json:"version"`
	Commit   string `json:"commit"`
	Branch   string `json:"branch"`
	Repo     string `json:"repo"`
	Author   string `json:"author"`
	Message  string `json:"message"`
}

type buildJSON struct {
	ID              string     `json:"id"`
	App             idRef      `json:"app"`
	CreatedAt       Time       `json:"created_at"`
	UpdatedAt       Time       `json:"updated_at"`
	SourceBlob      sourceBlob `json:"source_blob"`
	Slug            *idRef     `json:"slug"`
	Status          string     `json:"status"`
	User            user       `json:"user"`
	OutputStreamURL string     `json:"output_stream_url"`
}

func buildToJSON(b *slipway.Build) buildJSON {
	j := buildJSON{
		ID: b.ID, App: idRef{b.AppID}, CreatedAt: Time(b.CreatedAt), UpdatedAt: Time(b.UpdatedAt),
		SourceBlob: sourceBlob{Checksum: b.Checksum, URL: b.SourceURL, Version: b.Version, Commit: b.SHA,
			Branch: b.Branch, Repo: b.Repo, Author: b.Author, Message: b.Message},
		Status: b.Status, User: user{ID: b.UserID, Email: b.UserEmail},
		OutputStreamURL: "/apps/" + b.AppID + "/builds/" + b.ID + "/result",
	}
	if b.Status == slipway.BuildSucceeded {
		j.Slug = &idRef{b.ID}
	}
	return j
}

type releaseJSON struct {
	ID              string `json:"id"`
	App             ref    `json:"app"`
	CreatedAt       Time   `json:"created_at"`
	UpdatedAt       Time   `json:"updated_at"`
	Description     string `json:"description"`
	Slug            idRef  `json:"slug"`
	Status          string `json:"status"`
	State           string `json:"state"`
	User            user   `json:"user"`
	Version         int    `json:"version"`
	Current         bool   `json:"current"`
	Trigger         string `json:"trigger"`
	Error           string `json:"error,omitempty"`
	OutputStreamURL string `json:"output_stream_url"`
}

func releaseToJSON(r *slipway.Release) releaseJSON {
	return releaseJSON{
		ID: r.ID, App: ref{ID: r.AppID, Name: r.AppName}, CreatedAt: Time(r.CreatedAt), UpdatedAt: Time(r.UpdatedAt),
		Description: r.Description, Slug: idRef{r.SlugID}, Status: r.Status, State: r.State,
		User: user{ID: r.UserID, Email: r.UserEmail}, Version: r.Version, Current: r.Current, Trigger: r.Trigger,
		Error: r.Error, OutputStreamURL: "/apps/" + r.AppID + "/releases/" + r.ID + "/log",
	}
}

type statusJSON struct {
	ID          string `json:"id"`
	State       string `json:"state"`
	Name        string `json:"name"`
	Context     string `json:"context"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
	ImageURL    string `json:"image_url"`
	CreatedAt   Time   `json:"created_at"`
	UpdatedAt   Time   `json:"updated_at"`
}

func statusToJSON(s *slipway.ReleaseStatus) statusJSON {
	return statusJSON{ID: s.ID, State: s.State, Name: s.Name, Context: s.Context, Description: s.Description,
		TargetURL: s.TargetURL, ImageURL: s.ImageURL, CreatedAt: Time(s.CreatedAt), UpdatedAt: Time(s.UpdatedAt)}
}

type formationJSON struct {
	App         ref    `json:"app"`
	Type        string `json:"type"`
	Quantity    int    `json:"quantity"`
	Size        string `json:"size"`
	Port        int    `json:"port"`
	Command     string `json:"command"`
	Healthcheck string `json:"healthcheck"`
	CreatedAt   Time   `json:"created_at"`
	UpdatedAt   Time   `json:"updated_at"`
}

func formationToJSON(a *slipway.App, f *slipway.Formation) formationJSON {
	return formationJSON{App: ref{ID: a.ID, Name: a.Name}, Type: f.Type, Quantity: f.Quantity, Size: f.Size, Port: f.Port,
		Command: f.Command, Healthcheck: f.Healthcheck, CreatedAt: Time(f.CreatedAt), UpdatedAt: Time(f.UpdatedAt)}
}

type dynoJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Type    string `json:"type"`
	State   string `json:"state"`
	Ready   bool   `json:"ready"`
	Release struct {
		ID      string `json:"id"`
		Version int    `json:"version"`
	} `json:"release"`
	Command        string `json:"command"`
	CreatedAt      Time   `json:"created_at"`
	UpdatedAt      Time   `json:"updated_at"`
	AdditionalInfo string `json:"additional_info"`
}

func dynoToJSON(d slipway.Dyno) dynoJSON {
	j := dynoJSON{ID: d.ID, Name: d.Name, Type: d.Type, State: d.State, Ready: d.Ready, Command: d.Command,
		CreatedAt: Time(d.CreatedAt), UpdatedAt: Time(d.UpdatedAt), AdditionalInfo: d.AdditionalInfo}
	j.Release.ID, j.Release.Version = d.Release.ID, d.Release.Version
	return j
}

type orgJSON struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	CreatedAt   Time   `json:"created_at"`
	UpdatedAt   Time   `json:"updated_at"`
}

type spaceJSON struct {
	orgJSON
	Compliance []string `json:"compliance"`
	// Organization owns the space; null for a space shared by every
	// organization.
	Organization *ref `json:"organization"`
}
