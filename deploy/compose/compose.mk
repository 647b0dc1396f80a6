# docker compose targets, included by the root Makefile:
#   make up ENV=dev|prod     build and start the stack (waits until healthy)
#   make down ENV=dev|prod   stop it (volumes are kept; add DOWN_FLAGS=-v to drop them)
#   make logs ENV=dev|prod   follow the logs (SERVICE=worker for one service)
#   make compose-ps ENV=...      list the services and their health
#   make compose-config ENV=...  print the resolved compose file
#   make token ENV=prod NAME=ci SCOPES=tasks:read,tasks:write
#                            add an API token to deploy/compose/secrets/$(ENV).tokens
#                            (the token is printed once; only its hash is kept)
#
# Prod secrets come from the environment or from the git-ignored
# deploy/compose/secrets/$(ENV).env (see prod.env.example); compose refuses
# to start without them.

ENV ?= dev
COMPOSE_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
COMPOSE_ROOT := $(abspath $(COMPOSE_DIR)/../..)

COMPOSE_ENV_FILE := $(COMPOSE_ROOT)/.env.$(ENV)
COMPOSE_SECRETS_FILE := $(COMPOSE_ROOT)/deploy/compose/secrets/$(ENV).env
COMPOSE := docker compose \
	--env-file $(COMPOSE_ENV_FILE) \
	$(if $(wildcard $(COMPOSE_SECRETS_FILE)),--env-file $(COMPOSE_SECRETS_FILE)) \
	-f $(COMPOSE_ROOT)/deploy/compose/compose.yml

# Stamped into the images (main.version, main.commit) and their tags.
VERSION ?= $(shell git -C $(COMPOSE_ROOT) describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git -C $(COMPOSE_ROOT) rev-parse HEAD 2>/dev/null || echo unknown)
export VERSION COMMIT

SERVICE ?=
DOWN_FLAGS ?=

COMPOSE_TOKENS_FILE := $(COMPOSE_ROOT)/deploy/compose/secrets/$(ENV).tokens
NAME ?=
SCOPES ?=

.PHONY: up down logs compose-ps compose-config compose-check-env compose-check-secrets token

# Checked when a compose target runs, not when the Makefile is read: some
# shells export ENV for their own use.
compose-check-env:
	@case "$(ENV)" in dev|prod) ;; *) echo "ENV must be dev or prod, got '$(ENV)'" >&2; exit 2;; esac

# Prod needs its tokens file (compose mounts it); the binaries check the rest.
compose-check-secrets: compose-check-env
ifeq ($(ENV),prod)
	@[ -s "$(COMPOSE_TOKENS_FILE)" ] || { echo "missing $(COMPOSE_TOKENS_FILE): run 'make token ENV=prod NAME=admin SCOPES=tasks:admin' first" >&2; exit 2; }
endif

up: compose-check-secrets
	$(COMPOSE) up -d --build --wait

down: compose-check-env
	$(COMPOSE) down $(DOWN_FLAGS)

logs: compose-check-env
	$(COMPOSE) logs -f --tail=200 $(SERVICE)

compose-ps: compose-check-env
	$(COMPOSE) ps

compose-config: compose-check-env
	$(COMPOSE) config

## token: make an API token and add its hash to deploy/compose/secrets/$(ENV).tokens
token: compose-check-env
	@[ -n "$(NAME)" ] && [ -n "$(SCOPES)" ] || { echo "usage: make token ENV=prod NAME=ci SCOPES=tasks:read,tasks:write" >&2; exit 2; }
	@out=$$(cd $(COMPOSE_ROOT) && go run ./cmd/app token new --name "$(NAME)" --scopes "$(SCOPES)") || exit 1; \
	( umask 077; printf '%s\n' "$$out" | sed -n 's/^  \([^ ]*:[0-9a-f]\{64\}\)$$/\1/p' >> "$(COMPOSE_TOKENS_FILE)" ); \
	printf '%s\n' "$$out" | sed -n '1,2p'; echo "added to $(COMPOSE_TOKENS_FILE)"
