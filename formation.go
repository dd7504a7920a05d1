package slipway

import "context"

// FormationChange is one formation to create or change; nil fields keep
// their value (or take the default on create).
type FormationChange struct {
	Type        string
	Quantity    *int
	Size        *string
	Port        *int
	Command     *string
	Healthcheck *string
	// RemoveHealthcheck clears the health check (the port is checked
	// again) and RemoveCommand the command (the Procfile's runs again):
	// Akkeris's removeHealthcheck and remove-command.
	RemoveHealthcheck bool
	RemoveCommand     bool
}

// FormationStore keeps how many dynos of each process type an app runs.
type FormationStore interface {
	// ListFormations lists the app's formations by type.
	ListFormations(ctx context.Context, appID string) ([]*Formation, error)
	// UpsertFormations creates or changes formations in one transaction
	// (a field of an existing formation keeps its value unless set) and
	// returns all of the app's. EUnprocessable, and nothing changes, for a
	// change FormationChange.Validate refuses or one that takes the app
	// past MaxFormationTypes or the app or its organization past the
	// store's DynoLimits.
	UpsertFormations(ctx context.Context, appID string, fs []FormationChange) ([]*Formation, error)
	// DeleteFormation removes one; ENotFound if the app has none of typ.
	DeleteFormation(ctx context.Context, appID, typ string) error
	// EnsureFormations creates, for an app with no formation, web with
	// quantity 1 and every other process type with quantity 0; an app with
	// formations gets the missing types at 0. EUnprocessable, and nothing
	// changes, when that passes a limit, as for UpsertFormations.
	EnsureFormations(ctx context.Context, appID string, processTypes []string) error
}
