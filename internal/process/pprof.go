//go:build pprof

package process

import (
	"net/http"
	"net/http/pprof"
)

// handleProfiling serves net/http/pprof on the admin port. Only binaries
// built with -tags pprof have it (the benchmark's profiling pass, `make
// bench BENCH_FLAGS=-pprof=DIR`); release builds and images do not.
func handleProfiling(mux *http.ServeMux) {
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
}
