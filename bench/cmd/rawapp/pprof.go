//go:build pprof

package main

import (
	"net/http"
	"net/http/pprof"
)

// handleProfiling serves net/http/pprof, like taskstack's admin port in a
// -tags pprof build, so the harness profiles both stacks the same way.
func handleProfiling(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
}
