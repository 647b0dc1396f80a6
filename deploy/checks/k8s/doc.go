// Package k8s checks the Kubernetes manifests under deploy/k8s by code,
// since no cluster is at hand: every overlay, with and without the optional
// components, is built with kustomize's Go API and its output is decoded
// strictly, admitted by the restricted Pod Security profile, and compared
// with what the binaries read (internal/config), with the compose rule file
// and with the Grafana dashboards.
//
// The package holds only tests. Generated copies (the PrometheusRule and the
// dashboards ConfigMaps) are rewritten with
//
//	go test ./k8s -run TestGenerated -update   # or: make k8s-sync
package k8s
