//go:build !pprof

package main

import "net/http"

func handleProfiling(*http.ServeMux) {}
