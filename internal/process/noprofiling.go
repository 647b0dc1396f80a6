//go:build !pprof

package process

import "net/http"

// handleProfiling adds nothing: net/http/pprof is only in binaries built
// with -tags pprof (see pprof.go).
func handleProfiling(*http.ServeMux) {}
