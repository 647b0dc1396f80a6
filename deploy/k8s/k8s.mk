# Kubernetes targets, included by the root Makefile (docs/deploy-kubernetes.md):
#
#   make images                       build taskstack/app and taskstack/worker with
#                                     the tags the overlays use (dev and prod)
#   make k8s-load-kind [KIND_CLUSTER=kind]   load them into a kind cluster
#   make k8s-load-minikube            load them into minikube
#   make k8s-secrets ENV=prod         create the git-ignored secret files
#                                     (random values, one admin token)
#   make k8s-apply ENV=dev|prod [COMPONENTS="monitoring keda [keda-latency]"]
#   make k8s-diff / k8s-delete ENV=... [COMPONENTS=...]
#   make k8s-render ENV=... [COMPONENTS=...]  print the manifests (kubectl kustomize)
#   make k8s-sync                     regenerate components/monitoring from the
#                                     compose rules and grafana/dashboards
#   make k8s-check                    run deploy/checks/k8s
#
# COMPONENTS are kustomize components under deploy/k8s/components, applied
# on top of the overlay through a composite kustomization written to
# deploy/k8s/.build/$(ENV) (git-ignored).

ENV ?= dev
COMPONENTS ?=
K8S_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
K8S_ROOT := $(abspath $(K8S_DIR)/../..)
KUBECTL ?= kubectl
DOCKER ?= docker
KIND ?= kind
KIND_CLUSTER ?= kind
MINIKUBE ?= minikube
GO ?= go
# How to run the app binary for `token new` (the tests point it at a build).
APP ?= cd $(K8S_ROOT) && $(GO) run ./cmd/app

# Image tags, one per overlay: keep them equal to `images:` in
# overlays/<env>/kustomization.yaml (deploy/checks/k8s checks it).
K8S_TAG_dev := dev
K8S_TAG_prod := 0.1.0
K8S_IMAGES := taskstack/app taskstack/worker

K8S_VERSION ?= $(shell git -C $(K8S_ROOT) describe --tags --always --dirty 2>/dev/null || echo dev)
K8S_COMMIT ?= $(shell git -C $(K8S_ROOT) rev-parse HEAD 2>/dev/null || echo unknown)

K8S_OVERLAY = $(K8S_DIR)/overlays/$(ENV)
K8S_TARGET = $(if $(strip $(COMPONENTS)),$(K8S_DIR)/.build/$(ENV),$(K8S_OVERLAY))

.PHONY: images k8s-load-kind k8s-load-minikube k8s-check-env k8s-secrets k8s-ensure-secrets \
	k8s-kustomization k8s-render k8s-diff k8s-apply k8s-delete k8s-sync k8s-check

## images: build taskstack/app and taskstack/worker, tagged for both overlays
images:
	$(DOCKER) build -f $(K8S_ROOT)/Dockerfile.app \
		--build-arg VERSION=$(K8S_VERSION) --build-arg COMMIT=$(K8S_COMMIT) \
		-t taskstack/app:$(K8S_TAG_dev) -t taskstack/app:$(K8S_TAG_prod) $(K8S_ROOT)
	$(DOCKER) build -f $(K8S_ROOT)/Dockerfile.worker \
		--build-arg VERSION=$(K8S_VERSION) --build-arg COMMIT=$(K8S_COMMIT) \
		-t taskstack/worker:$(K8S_TAG_dev) -t taskstack/worker:$(K8S_TAG_prod) $(K8S_ROOT)

k8s-load-kind: k8s-check-env
	$(KIND) load docker-image --name $(KIND_CLUSTER) $(foreach i,$(K8S_IMAGES),$(i):$(K8S_TAG_$(ENV)))

k8s-load-minikube: k8s-check-env
	$(foreach i,$(K8S_IMAGES),$(MINIKUBE) image load $(i):$(K8S_TAG_$(ENV)) &&) true

k8s-check-env:
	@case "$(ENV)" in dev|prod) ;; *) echo "ENV must be dev or prod, got '$(ENV)'" >&2; exit 2;; esac
	@for c in $(COMPONENTS); do \
		[ -f "$(K8S_DIR)/components/$$c/kustomization.yaml" ] || { echo "unknown component '$$c' (see $(K8S_DIR)/components)" >&2; exit 2; }; \
	done
# keda-latency adds a trigger to keda's ScaledObject: keda must come first.
	@seen=" "; for c in $(COMPONENTS); do \
		if [ "$$c" = keda-latency ] && [ "$${seen#* keda }" = "$$seen" ]; then \
			echo "component keda-latency needs keda listed before it: COMPONENTS=\"keda keda-latency\"" >&2; exit 2; \
		fi; \
		seen="$$seen$$c "; \
	done

## k8s-secrets: create overlays/prod/secrets/* if missing (never overwrites): random passwords and keys, and one admin API token, printed once
k8s-secrets: k8s-check-env
	@if [ "$(ENV)" = dev ]; then echo "dev needs no secret files: its dev-only values are in overlays/dev"; exit 0; fi; \
	for ex in $(K8S_OVERLAY)/secrets/*.env.example; do \
		f=$${ex%.example}; \
		if [ -e "$$f" ]; then echo "keeping $$f"; continue; fi; \
		( umask 077; grep -v '^#' "$$ex" | sed -n 's/^\([A-Z_][A-Z0-9_]*\)=.*/\1/p' | while read -r k; do \
			printf '%s=%s\n' "$$k" "$$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')"; \
		done > "$$f" ); \
		echo "wrote $$f"; \
	done; \
	tokens=$(K8S_OVERLAY)/secrets/tokens; \
	if [ -e "$$tokens" ]; then echo "keeping $$tokens"; else \
		out=$$($(APP) token new --name admin --scopes tasks:admin) || exit 1; \
		( umask 077; printf '%s\n' "$$out" | sed -n 's/^  \(admin:.*\)$$/\1/p' > "$$tokens" ); \
		echo "wrote $$tokens with one admin token; it is shown once, keep it:"; \
		printf '%s\n' "$$out" | sed -n '2p'; \
	fi

# The composite kustomization for COMPONENTS (deploy/checks/k8s builds the
# same file).
k8s-kustomization: k8s-check-env
	@if [ -n "$(strip $(COMPONENTS))" ]; then \
		mkdir -p $(K8S_DIR)/.build/$(ENV) && { \
		printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../overlays/%s\ncomponents:\n' $(ENV); \
		for c in $(COMPONENTS); do printf '  - ../../components/%s\n' "$$c"; done; \
		} > $(K8S_DIR)/.build/$(ENV)/kustomization.yaml; \
	fi

# dev has no secret files; prod must have them all.
k8s-ensure-secrets: k8s-check-env
	@if [ "$(ENV)" = prod ]; then \
		for ex in $(K8S_OVERLAY)/secrets/*.example; do \
			[ -e "$${ex%.example}" ] || { echo "missing $${ex%.example}: create it from $$ex or run 'make k8s-secrets ENV=prod'" >&2; exit 2; }; \
		done; \
	fi

k8s-render: k8s-ensure-secrets k8s-kustomization
	$(KUBECTL) kustomize $(K8S_TARGET)

k8s-diff: k8s-ensure-secrets k8s-kustomization
	$(KUBECTL) diff -k $(K8S_TARGET)

## k8s-apply: kubectl apply -k the overlay for ENV (+ COMPONENTS)
k8s-apply: k8s-ensure-secrets k8s-kustomization
	$(KUBECTL) apply -k $(K8S_TARGET)

k8s-delete: k8s-ensure-secrets k8s-kustomization
	$(KUBECTL) delete --ignore-not-found -k $(K8S_TARGET)

## k8s-sync: regenerate the PrometheusRule and dashboards ConfigMaps
k8s-sync:
	cd $(K8S_ROOT)/deploy/checks && $(GO) test ./k8s -run '^TestGenerated$$' -count=1 -update

k8s-check:
	cd $(K8S_ROOT)/deploy/checks && $(GO) test -count=1 ./k8s
