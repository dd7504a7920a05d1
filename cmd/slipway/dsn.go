package main

import (
	"net/url"
	"regexp"
	"strings"
)

// dsnPassword is the password of a key=value DSN ("host=db
// password='s e c r e t' dbname=x"), quoted or not.
var dsnPassword = regexp.MustCompile(`(?i)(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'?|\S*)`)

// redactDSN is a database setting fit to print: the password of a URL
// (in its user info or a password= parameter) or of a key=value DSN is
// replaced by xxxxx. A URL that does not parse shows only its scheme: the
// password cannot be told from the rest. A file path is shown as it is.
func redactDSN(dsn string) string {
	if scheme, _, ok := strings.Cut(dsn, "://"); ok {
		u, err := url.Parse(dsn)
		if err != nil {
			return scheme + "://xxxxx (not a valid URL)"
		}
		if q := u.Query(); q.Has("password") {
			q.Set("password", "xxxxx")
			u.RawQuery = q.Encode()
		}
		return u.Redacted()
	}
	return dsnPassword.ReplaceAllString(dsn, "${1}xxxxx")
}
