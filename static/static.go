// Package static holds the portal's CSS and JavaScript, embedded in the
// binary so no file is read from disk at run time. The portal serves them
// under fingerprinted names and lets browsers cache them forever.
package static

import "embed"

// FS holds css/ and js/.
//
//go:embed css js
var FS embed.FS
