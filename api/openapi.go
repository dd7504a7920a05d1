package api

import (
	"net/http"

	"sigs.k8s.io/yaml"

	"github.com/slipway/slipway/docs"
)

// specJSON is docs/openapi.yaml converted to JSON. The document is
// embedded and a test loads it, so a conversion error is a build mistake:
// it panics at start rather than serving a broken document.
func specJSON() []byte {
	b, err := yaml.YAMLToJSON(docs.OpenAPI)
	if err != nil {
		panic("docs/openapi.yaml: " + err.Error())
	}
	return b
}

// openAPI serves the API's OpenAPI document; it needs no token.
func (s *Server) openAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Write(s.spec)
}
