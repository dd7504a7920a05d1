package main

import "testing"

// The database setting is printed at start-up and by --migrate-only: no
// password in any form a user may give reaches the output.
func TestRedactDSN(t *testing.T) {
	tests := []struct{ dsn, want string }{
		{"postgres://slipway:s3cret@db.example.com:5432/slipway?sslmode=disable", "postgres://slipway:xxxxx@db.example.com:5432/slipway?sslmode=disable"},
		{"postgres://slipway:p%40ss%2Fw@db/slipway", "postgres://slipway:xxxxx@db/slipway"},
		{"postgres://postgres@127.0.0.1:5432/test?sslmode=disable", "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"},
		{"postgres://db/slipway?user=slipway&password=s3cret", "postgres://db/slipway?password=xxxxx&user=slipway"},
		{"postgresql://u:a#b@db/slipway", "postgresql://xxxxx (not a valid URL)"}, // an unescaped '#' in the password
		{"host=db user=slipway password=s3cret dbname=slipway", "host=db user=slipway password=xxxxx dbname=slipway"},
		{`host=db password = 'it\'s a secret' dbname=slipway`, "host=db password = xxxxx dbname=slipway"},
		{"host=db PASSWORD=s3cret", "host=db PASSWORD=xxxxx"},
		{"/var/lib/slipway/slipway.db", "/var/lib/slipway/slipway.db"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := redactDSN(tt.dsn); got != tt.want {
			t.Errorf("redactDSN(%q) = %q, want %q", tt.dsn, got, tt.want)
		}
	}
}
