# docker compose targets, included by the root Makefile:
#   make up ENV=dev|prod     build and start the stack (waits until healthy)
#   make down ENV=dev|prod   stop it (volumes are kept; add DOWN_FLAGS=-v to drop them)
#   make logs ENV=dev|prod   follow the logs (SERVICE=worker for one service)
#   make compose-ps ENV=...      list the services and their health
#   make compose-config ENV=...  print the resolved compose file
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

.PHONY: up down logs compose-ps compose-config compose-check-env

# Checked when a compose target runs, not when the Makefile is read: some
# shells export ENV for their own use.
compose-check-env:
	@case "$(ENV)" in dev|prod) ;; *) echo "ENV must be dev or prod, got '$(ENV)'" >&2; exit 2;; esac

up: compose-check-env
	$(COMPOSE) up -d --build --wait

down: compose-check-env
	$(COMPOSE) down $(DOWN_FLAGS)

logs: compose-check-env
	$(COMPOSE) logs -f --tail=200 $(SERVICE)

compose-ps: compose-check-env
	$(COMPOSE) ps

compose-config: compose-check-env
	$(COMPOSE) config
