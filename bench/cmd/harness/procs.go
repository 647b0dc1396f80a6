package main

import (
	"taskstack/bench/internal/benchproc"
)

// proc is a benchmarked binary run as its own process, output to a log file.
type proc struct {
	*benchproc.Proc
	url string // admin or app base URL, when it serves HTTP
}

// startProc starts bin with env (and PATH) as its only environment.
func startProc(bin, logPath string, env map[string]string, args ...string) (*proc, error) {
	var e []string
	for k, v := range env {
		e = append(e, k+"="+v)
	}
	p, err := benchproc.Start(benchproc.Spec{Bin: bin, Args: args, Env: e, Log: logPath})
	if err != nil {
		return nil, err
	}
	return &proc{Proc: p}, nil
}
