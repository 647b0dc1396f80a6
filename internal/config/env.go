package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Var describes one environment variable a binary reads.
type Var struct {
	Name    string
	Default string
	Help    string
	// Secret marks values that must come from a secret store, never a ConfigMap.
	Secret bool
	// Passthrough marks variables read by a library (the OpenTelemetry SDK,
	// the Go runtime) rather than by our own code.
	Passthrough bool
}

// env reads variables through an injected getenv, records every variable it
// was asked about (so the set of variables a binary reads is derived from the
// code that reads them), and collects one error per malformed variable.
type env struct {
	getenv func(string) string
	vars   []Var
	errs   []error
}

func newEnv(getenv func(string) string) *env {
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	return &env{getenv: getenv}
}

func (e *env) record(v Var) string {
	e.vars = append(e.vars, v)
	return strings.TrimSpace(e.getenv(v.Name))
}

func (e *env) fail(name, format string, args ...any) {
	e.errs = append(e.errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
}

func (e *env) err() error { return errors.Join(e.errs...) }

func (e *env) String(name, def, help string) string {
	if v := e.record(Var{Name: name, Default: def, Help: help}); v != "" {
		return v
	}
	return def
}

func (e *env) Secret(name, help string) string {
	return e.record(Var{Name: name, Help: help, Secret: true})
}

// Passthrough declares a variable that a library reads itself and returns its value.
func (e *env) Passthrough(name, def, help string) string {
	return e.record(Var{Name: name, Default: def, Help: help, Passthrough: true})
}

func (e *env) Enum(name, def, help string, allowed ...string) string {
	v := e.String(name, def, help)
	if !slices.Contains(allowed, v) {
		e.fail(name, "%q is not one of %s", v, strings.Join(allowed, ", "))
		return def
	}
	return v
}

func (e *env) Bool(name string, def bool, help string) bool {
	raw := e.record(Var{Name: name, Default: strconv.FormatBool(def), Help: help})
	if raw == "" {
		return def
	}
	b, err := strconv.ParseBool(raw)
	if err != nil {
		e.fail(name, "%q is not a boolean (use true or false)", raw)
		return def
	}
	return b
}

func (e *env) Int(name string, def int, min, max int, help string) int {
	raw := e.record(Var{Name: name, Default: strconv.Itoa(def), Help: help})
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if err != nil {
		e.fail(name, "%q is not an integer", raw)
		return def
	}
	if n < min || n > max {
		e.fail(name, "%d is out of range [%d, %d]", n, min, max)
		return def
	}
	return n
}

func (e *env) Float(name string, def, min, max float64, help string) float64 {
	raw := e.record(Var{Name: name, Default: strconv.FormatFloat(def, 'g', -1, 64), Help: help})
	if raw == "" {
		return def
	}
	f, err := strconv.ParseFloat(raw, 64)
	if err != nil {
		e.fail(name, "%q is not a number", raw)
		return def
	}
	if f < min || f > max {
		e.fail(name, "%g is out of range [%g, %g]", f, min, max)
		return def
	}
	return f
}

func (e *env) Duration(name string, def, min, max time.Duration, help string) time.Duration {
	raw := e.record(Var{Name: name, Default: def.String(), Help: help})
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	if err != nil {
		e.fail(name, "%q is not a duration (e.g. 30s, 5m)", raw)
		return def
	}
	if d < min || d > max {
		e.fail(name, "%s is out of range [%s, %s]", d, min, max)
		return def
	}
	return d
}

// URLTemplate reads an optional absolute http(s) URL holding at least one
// of placeholders ("{trace_id}"), which the caller fills in later.
func (e *env) URLTemplate(name, help string, placeholders ...string) string {
	raw := e.String(name, "", help)
	if raw == "" {
		return ""
	}
	filled, found := raw, false
	for _, p := range placeholders {
		found = found || strings.Contains(raw, p)
		filled = strings.ReplaceAll(filled, p, "x")
	}
	u, err := url.Parse(filled)
	switch {
	case !found:
		e.fail(name, "%q holds none of %s: nothing would identify the task", Redact(raw), strings.Join(placeholders, ", "))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		e.fail(name, "%q is not an absolute http(s) URL", Redact(raw))
	default:
		return raw
	}
	return ""
}

// URL parses an optional absolute http(s) URL.
func (e *env) URL(name, help string) string {
	raw := e.String(name, "", help)
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		e.fail(name, "%q is not an absolute http(s) URL", Redact(raw))
		return ""
	}
	return raw
}

// Addr parses a listen address such as ":8080" or "127.0.0.1:0".
func (e *env) Addr(name, def, help string) string {
	v := e.String(name, def, help)
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		e.fail(name, "%q is not a listen address (e.g. :8080): %v", v, err)
		return def
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		e.fail(name, "%q has an invalid port", v)
		return def
	}
	return v
}

// Redact hides the user information of a URL ("https://user:xxxxx@host"),
// also in strings that do not parse as one, so that no error or log line
// ever carries a password.
func Redact(raw string) string {
	// An '@' outside the user information url.Parse found (in a path or
	// query, after a typo) may follow a password: cut as below.
	if u, err := url.Parse(raw); err == nil && u.User != nil && !strings.Contains(u.Opaque+u.Path+u.RawQuery+u.Fragment, "@") {
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		}
		return u.String()
	}
	// Otherwise cut everything between the scheme (if any) and the last '@'.
	if j := strings.LastIndex(raw, "@"); j >= 0 {
		prefix := ""
		if i := strings.Index(raw, "://"); i >= 0 && i < j {
			prefix = raw[:i+3]
		}
		return prefix + "xxxxx" + raw[j:]
	}
	return raw
}
