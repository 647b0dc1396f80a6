package guard

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// Scope is a permission a credential carries.
type Scope string

// The scopes of the app's API. Admin includes read and write.
const (
	ScopeRead  Scope = "tasks:read"  // list and read tasks, their payloads and results
	ScopeWrite Scope = "tasks:write" // submit tasks
	ScopeAdmin Scope = "tasks:admin" // delete and cancel tasks; implies read and write
)

// Scopes are every scope there is.
var Scopes = []Scope{ScopeRead, ScopeWrite, ScopeAdmin}

// ParseScopes reads "tasks:read,tasks:write".
func ParseScopes(raw string) ([]Scope, error) {
	var out []Scope
	for s := range strings.SplitSeq(raw, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(Scopes, Scope(s)) {
			return nil, fmt.Errorf("unknown scope %q (known: tasks:read, tasks:write, tasks:admin)", s)
		}
		if !slices.Contains(out, Scope(s)) {
			out = append(out, Scope(s))
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no scope given")
	}
	return out, nil
}

// token is one line of the tokens file.
type token struct {
	name   string
	scopes []Scope
	hash   [sha256.Size]byte
}

// TokenPrefix starts every token NewToken makes, so that secret scanners
// and people recognise one.
const TokenPrefix = "tsk_"

// NewToken returns a new random token and the line that grants it scopes
// under name in a tokens file. The token itself is never stored.
func NewToken(name string, scopes []Scope) (tok, line string, err error) {
	if err := checkName(name); err != nil {
		return "", "", err
	}
	if len(scopes) == 0 {
		return "", "", errors.New("no scope given")
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	tok = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	sum := sha256.Sum256([]byte(tok))
	names := make([]string, len(scopes))
	for i, s := range scopes {
		names[i] = string(s)
	}
	return tok, name + ":" + strings.Join(names, ",") + ":" + hex.EncodeToString(sum[:]), nil
}

func checkName(name string) error {
	if name == "" || strings.ContainsAny(name, ": \t\n") {
		return fmt.Errorf("token name %q must be non-empty, without ':' or spaces", name)
	}
	return nil
}

// parseTokens reads a tokens file: one `name:scopes:sha256-of-token` a
// line; blank lines and lines starting with # are ignored. Errors name the
// line, never a secret (the file holds none).
func parseTokens(data []byte) ([]token, error) {
	var out []token
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ":")
		// Scopes contain ':' themselves: name, then scopes, then the hash.
		if len(parts) < 3 {
			return nil, fmt.Errorf("line %d: want name:scopes:sha256", n)
		}
		name, hashHex := parts[0], parts[len(parts)-1]
		scopes, err := ParseScopes(strings.Join(parts[1:len(parts)-1], ":"))
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		raw, err := hex.DecodeString(hashHex)
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("line %d: the last field must be the 64 hex digits of the token's SHA-256 (app token new prints it)", n)
		}
		t := token{name: name, scopes: scopes}
		copy(t.hash[:], raw)
		if slices.ContainsFunc(out, func(o token) bool { return o.name == name }) {
			return nil, fmt.Errorf("line %d: token name %q used twice", n, name)
		}
		out = append(out, t)
	}
	return out, sc.Err()
}

// Tokens are the API tokens of a tokens file, reloaded when it changes.
type Tokens struct {
	path string
	log  *slog.Logger
	mu   sync.RWMutex
	list []token
	raw  []byte
}

// LoadTokens reads path; an unreadable or malformed file is an error.
func LoadTokens(path string, log *slog.Logger) (*Tokens, error) {
	t := &Tokens{path: path, log: log}
	if err := t.reload(); err != nil {
		return nil, err
	}
	return t, nil
}

func (t *Tokens) reload() error {
	data, err := os.ReadFile(t.path)
	if err != nil {
		return fmt.Errorf("tokens file: %w", err)
	}
	t.mu.RLock()
	same := bytes.Equal(data, t.raw)
	t.mu.RUnlock()
	if same {
		return nil
	}
	list, err := parseTokens(data)
	if err != nil {
		return fmt.Errorf("tokens file %s: %w", t.path, err)
	}
	t.mu.Lock()
	first := t.raw == nil
	t.list, t.raw = list, data
	t.mu.Unlock()
	if !first {
		t.log.Info("tokens file reloaded", slog.String("path", t.path), slog.Int("tokens", len(list)))
	}
	return nil
}

// Watch rereads the file every interval until ctx is done: rotating a
// token is editing the file (a Kubernetes Secret update swaps it), no
// restart. A file that no longer parses keeps the tokens in force and is
// logged.
func (t *Tokens) Watch(ctx context.Context, interval time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			if err := t.reload(); err != nil {
				t.log.ErrorContext(ctx, "tokens file not reloaded; the previous tokens stay in force", slog.Any("err", err))
			}
		}
	}
}

// lookup returns the token whose hash is sum, comparing every token's hash
// in constant time.
func (t *Tokens) lookup(sum [sha256.Size]byte) (token, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	var found token
	ok := 0
	for _, tk := range t.list {
		if subtle.ConstantTimeCompare(tk.hash[:], sum[:]) == 1 {
			found, ok = tk, 1
		}
	}
	return found, ok == 1
}

// Verify returns the identity a presented token stands for.
func (t *Tokens) Verify(presented string) (Identity, bool) {
	tk, ok := t.lookup(sha256.Sum256([]byte(presented)))
	if !ok {
		return Identity{}, false
	}
	return Identity{Name: tk.name, Scopes: tk.scopes, Via: ViaToken, tokenID: tokenID(tk.hash)}, true
}

// stillValid reports whether a token (by its ID) is still in the file.
func (t *Tokens) stillValid(id string, name string) ([]Scope, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	for _, tk := range t.list {
		if tokenID(tk.hash) == id && tk.name == name {
			return tk.scopes, true
		}
	}
	return nil, false
}

// tokenID names a token in a session cookie without revealing its hash.
func tokenID(hash [sha256.Size]byte) string {
	sum := sha256.Sum256(append([]byte("taskstack-session:"), hash[:]...))
	return hex.EncodeToString(sum[:8])
}
