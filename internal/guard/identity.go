package guard

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
)

// How an identity was established.
const (
	ViaToken   = "token"
	ViaSession = "session"
	ViaProxy   = "proxy"
	ViaOpen    = "open" // no authentication configured (dev only)
)

// Anonymous is who everyone is when authentication is off.
const Anonymous = "anonymous"

// Identity is who is asking and what they may do.
type Identity struct {
	Name    string
	Scopes  []Scope
	Via     string
	tokenID string
}

// Can reports whether the identity carries scope (admin carries them all).
func (id Identity) Can(scope Scope) bool {
	return slices.Contains(id.Scopes, scope) || slices.Contains(id.Scopes, ScopeAdmin)
}

// Errors of Identify.
var (
	// ErrNoCredential: the request carries no credential at all.
	ErrNoCredential = errors.New("authentication required: send Authorization: Bearer <token>, or log in")
	// ErrBadCredential: a credential that is not valid (unknown token,
	// forged or expired session, token since revoked).
	ErrBadCredential = errors.New("the credential is not valid")
)

// AuthOptions configure an Authenticator. With neither tokens nor a proxy
// header, every request is Anonymous with every scope: only for dev.
type AuthOptions struct {
	Tokens   *Tokens
	Sessions *Sessions
	// ProxyHeader names the header a trusted authenticating proxy
	// (oauth2-proxy, an ingress's auth) puts the user name in; it is
	// believed only from ProxyNetworks, with ProxyScopes.
	ProxyHeader   string
	ProxyNetworks []netip.Prefix
	ProxyScopes   []Scope
}

// Authenticator tells who a request comes from.
type Authenticator struct{ o AuthOptions }

// NewAuthenticator returns an Authenticator.
func NewAuthenticator(o AuthOptions) *Authenticator { return &Authenticator{o: o} }

// Open reports whether authentication is off.
func (a *Authenticator) Open() bool { return a.o.Tokens == nil && a.o.ProxyHeader == "" }

// Identify returns the request's identity: a bearer token first, then a
// session cookie, then a trusted proxy's user header.
func (a *Authenticator) Identify(r *http.Request) (Identity, error) {
	if a.Open() {
		return Identity{Name: Anonymous, Scopes: Scopes, Via: ViaOpen}, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || a.o.Tokens == nil {
			return Identity{}, ErrBadCredential
		}
		id, ok := a.o.Tokens.Verify(strings.TrimSpace(tok))
		if !ok {
			return Identity{}, ErrBadCredential
		}
		return id, nil
	}
	if c, err := r.Cookie(SessionCookie); err == nil && a.o.Sessions != nil && a.o.Tokens != nil {
		s, err := a.o.Sessions.verify(c.Value)
		if err != nil {
			return Identity{}, ErrBadCredential
		}
		scopes, ok := a.o.Tokens.stillValid(s.TokenID, s.Name)
		if !ok {
			return Identity{}, ErrBadCredential // the token was revoked: so is the session
		}
		return Identity{Name: s.Name, Scopes: scopes, Via: ViaSession, tokenID: s.TokenID}, nil
	}
	if a.o.ProxyHeader != "" {
		if user := strings.TrimSpace(r.Header.Get(a.o.ProxyHeader)); user != "" && a.fromProxy(r) {
			return Identity{Name: user, Scopes: a.o.ProxyScopes, Via: ViaProxy}, nil
		}
	}
	return Identity{}, ErrNoCredential
}

func (a *Authenticator) fromProxy(r *http.Request) bool {
	ip, err := netip.ParseAddr(RemoteIP(r))
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	return slices.ContainsFunc(a.o.ProxyNetworks, func(p netip.Prefix) bool { return p.Contains(ip) })
}

// RemoteIP is the address the connection comes from (never a header: only
// the connection can not be forged).
func RemoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// ParseNetworks reads "10.0.0.0/8,192.168.1.7" (a bare address is a /32 or /128).
func ParseNetworks(raw string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for s := range strings.SplitSeq(raw, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR", s)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", s)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
