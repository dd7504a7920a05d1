// Package docs holds Slipway's API description, openapi.yaml, so that the
// server can serve it and the tests can hold the routes and the answers
// against it.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml: the OpenAPI 3.0 description of every
// route of the HTTP API.
//
//go:embed openapi.yaml
var OpenAPI []byte
