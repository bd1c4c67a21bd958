// Package docs holds documents of the portal that the portal also serves:
// the OpenAPI description of the integration API, kept here in docs/ next
// to the protocol description and embedded from here, because go:embed
// cannot reach a parent folder.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml, served at GET /api/v1/openapi.yaml.
//
//go:embed openapi.yaml
var OpenAPI []byte
