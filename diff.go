package slipway

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ReleaseContents is what a release was made of beyond its own row, as a
// release diff compares it. Slug and Build are nil when they are gone or
// were never recorded; Formation is nil for a release made before Slipway
// recorded formations with releases.
type ReleaseContents struct {
	Release   *Release
	Slug      *Slug
	Build     *Build
	Formation []Formation
	// RollbackOf is the release a rollback restored; nil for other
	// releases.
	RollbackOf *Release
}

// DeliveryStore reads the history that release diffs and delivery metrics
// are computed from.
type DeliveryStore interface {
	// ReleaseContents returns r's slug, build, formation and, for a
	// rollback, the release it restored (each as far as it is still
	// known).
	ReleaseContents(ctx context.Context, r *Release) (*ReleaseContents, error)
	// ReleaseCurrentAt returns the release that was the app's current one
	// when r was created; ENotFound when the app had none.
	ReleaseCurrentAt(ctx context.Context, r *Release) (*Release, error)
	// DeliveryHistory returns the releases of the apps (of every app when
	// appIDs is nil) created at or after since, by app and version.
	DeliveryHistory(ctx context.Context, appIDs []string, since time.Time) ([]DeliveryRecord, error)
}

// ReleaseDiff is what changed from one release (Against) to another. It
// names config var keys only, never their values.
type ReleaseDiff struct {
	Release      *Release
	Against      *Release // nil: the release is compared with nothing
	Config       KeyChanges
	Slug         SlugChange
	ProcessTypes KeyChanges // by process type: added, removed, command changed
	// Formation lists the formation's changes by type; FormationKnown is
	// false when either release did not record its formation.
	Formation      []FormationDiff
	FormationKnown bool
	// Strategy is the strategy type of each release when they differ.
	Strategy   *[2]string
	RollbackOf *Release
}

// KeyChanges are names added, removed and changed, each sorted.
type KeyChanges struct {
	Added   []string
	Removed []string
	Changed []string
}

// Empty reports whether nothing changed.
func (k KeyChanges) Empty() bool { return len(k.Added)+len(k.Removed)+len(k.Changed) == 0 }

// SlugSide is one release's slug as a diff shows it: the build and, when
// the build gave them, its commit and branch.
type SlugSide struct {
	ID       string
	Checksum string
	Image    string
	Commit   string
	Branch   string
	Repo     string
}

// SlugChange is the slug of each release; From is nil when there is no
// release compared against.
type SlugChange struct {
	Changed bool
	From    *SlugSide
	To      SlugSide
}

// FormationDiff is one process type's formation change: Change is
// "added", "removed" or "changed", and Fields the fields that changed
// (quantity, size, port, command, healthcheck).
type FormationDiff struct {
	Type   string
	Change string
	Fields []FieldChange
}

// FieldChange is a formation field's value before and after. A command
// is shown as changed only: From and To are left empty.
type FieldChange struct {
	Field string
	From  string
	To    string
}

// DiffReleases compares to with from (nil: nothing, so everything in to is
// added).
func DiffReleases(from, to *ReleaseContents) ReleaseDiff {
	d := ReleaseDiff{Release: to.Release, RollbackOf: to.RollbackOf}
	var fromCfg, fromPT map[string]string
	var fromSlug *SlugSide
	var fromFormation []Formation
	fromKnown := true
	fromStrategy := StrategyRolling
	if from != nil {
		d.Against = from.Release
		fromCfg = from.Release.Config
		if from.Slug != nil {
			fromPT = from.Slug.ProcessTypes
		}
		s := slugSide(from)
		fromSlug = &s
		fromFormation, fromKnown = from.Formation, from.Formation != nil
		fromStrategy = strategyType(from.Release.Strategy)
	}
	d.Config = diffKeys(fromCfg, to.Release.Config)
	var toPT map[string]string
	if to.Slug != nil {
		toPT = to.Slug.ProcessTypes
	}
	d.ProcessTypes = diffKeys(fromPT, toPT)
	d.Slug = SlugChange{From: fromSlug, To: slugSide(to), Changed: fromSlug == nil || fromSlug.ID != to.Release.SlugID}
	d.FormationKnown = fromKnown && to.Formation != nil
	if d.FormationKnown {
		d.Formation = diffFormation(fromFormation, to.Formation)
	}
	if ts := strategyType(to.Release.Strategy); ts != fromStrategy {
		d.Strategy = &[2]string{fromStrategy, ts}
	}
	return d
}

func strategyType(s Strategy) string {
	if s.Type == "" {
		return StrategyRolling
	}
	return s.Type
}

func slugSide(c *ReleaseContents) SlugSide {
	s := SlugSide{ID: c.Release.SlugID}
	if c.Slug != nil {
		s.Checksum, s.Image = c.Slug.Checksum, c.Slug.Image
	}
	if c.Build != nil {
		s.Commit, s.Branch, s.Repo = c.Build.SHA, c.Build.Branch, c.Build.Repo
		if s.Checksum == "" {
			s.Checksum = c.Build.Checksum
		}
	}
	return s
}

// diffKeys compares two maps by key: values are compared, never returned.
func diffKeys(from, to map[string]string) KeyChanges {
	k := KeyChanges{Added: []string{}, Removed: []string{}, Changed: []string{}}
	for key, v := range to {
		old, ok := from[key]
		switch {
		case !ok:
			k.Added = append(k.Added, key)
		case old != v:
			k.Changed = append(k.Changed, key)
		}
	}
	for key := range from {
		if _, ok := to[key]; !ok {
			k.Removed = append(k.Removed, key)
		}
	}
	sort.Strings(k.Added)
	sort.Strings(k.Removed)
	sort.Strings(k.Changed)
	return k
}

func diffFormation(from, to []Formation) []FormationDiff {
	old := map[string]Formation{}
	for _, f := range from {
		old[f.Type] = f
	}
	out := []FormationDiff{}
	seen := map[string]bool{}
	for _, f := range to {
		seen[f.Type] = true
		o, ok := old[f.Type]
		if !ok {
			out = append(out, FormationDiff{Type: f.Type, Change: "added"})
			continue
		}
		var fields []FieldChange
		add := func(name, a, b string) {
			if a != b {
				fields = append(fields, FieldChange{Field: name, From: a, To: b})
			}
		}
		add("quantity", strconv.Itoa(o.Quantity), strconv.Itoa(f.Quantity))
		add("size", o.Size, f.Size)
		add("port", strconv.Itoa(o.Port), strconv.Itoa(f.Port))
		if o.Command != f.Command {
			fields = append(fields, FieldChange{Field: "command"})
		}
		add("healthcheck", o.Healthcheck, f.Healthcheck)
		if len(fields) > 0 {
			out = append(out, FormationDiff{Type: f.Type, Change: "changed", Fields: fields})
		}
	}
	for _, f := range from {
		if !seen[f.Type] {
			out = append(out, FormationDiff{Type: f.Type, Change: "removed"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// summaryKeys is how many names of one kind a summary lists before
// counting the rest.
const summaryKeys = 4

// Summary is the diff in one line, such as "v7 against v6: code 1a2b3c4d →
// 5e6f7a8b; config +DATABASE_URL ~LOG_LEVEL; formation ~web". Config
// values never appear in it.
func (d ReleaseDiff) Summary() string {
	head := fmt.Sprintf("v%d", d.Release.Version)
	if d.Against != nil {
		head += fmt.Sprintf(" against v%d", d.Against.Version)
	} else {
		head += " (first release)"
	}
	var parts []string
	if d.RollbackOf != nil {
		parts = append(parts, fmt.Sprintf("rollback to v%d", d.RollbackOf.Version))
	}
	if d.Slug.Changed {
		from := "none"
		if d.Slug.From != nil {
			from = d.Slug.From.label()
		}
		parts = append(parts, "code "+from+" → "+d.Slug.To.label())
	}
	if s := keyLine(d.Config); s != "" {
		parts = append(parts, "config "+s)
	}
	if s := keyLine(d.ProcessTypes); s != "" {
		parts = append(parts, "process types "+s)
	}
	if len(d.Formation) > 0 {
		var k KeyChanges
		for _, f := range d.Formation {
			switch f.Change {
			case "added":
				k.Added = append(k.Added, f.Type)
			case "removed":
				k.Removed = append(k.Removed, f.Type)
			default:
				k.Changed = append(k.Changed, f.Type)
			}
		}
		parts = append(parts, "formation "+keyLine(k))
	}
	if d.Strategy != nil {
		parts = append(parts, "strategy "+d.Strategy[0]+" → "+d.Strategy[1])
	}
	if len(parts) == 0 {
		return head + ": no changes"
	}
	return head + ": " + strings.Join(parts, "; ")
}

// label names a slug by its commit when the build gave one, else by its
// build id, shortened.
func (s SlugSide) label() string {
	short := func(x string) string {
		if len(x) > 8 {
			return x[:8]
		}
		return x
	}
	if s.Commit != "" {
		return short(s.Commit)
	}
	return short(s.ID)
}

// keyLine writes changes as "+A +B -C ~D", at most summaryKeys names of
// each kind, then "(+N more)".
func keyLine(k KeyChanges) string {
	var out []string
	for _, kind := range []struct {
		sign  string
		names []string
	}{{"+", k.Added}, {"-", k.Removed}, {"~", k.Changed}} {
		for i, n := range kind.names {
			if i == summaryKeys {
				out = append(out, fmt.Sprintf("(%s%d more)", kind.sign, len(kind.names)-summaryKeys))
				break
			}
			out = append(out, kind.sign+n)
		}
	}
	return strings.Join(out, " ")
}
