// Package webhook delivers JSON bodies by HTTP POST to URLs an allowlist
// permits, without letting a task reach what it should not (SSRF): a URL's
// host must be on the allowlist, and the address actually dialled, after
// DNS resolution and on every connection, must be public unless an
// allowlisted IP range names it. Checking at dial time is what defeats DNS
// rebinding: a name that resolved to a public address at enqueue time and
// to 127.0.0.1 at delivery time is refused at delivery.
//
// It knows nothing of tasks: the demo:webhook task type (internal/tasks)
// uses a Client through a small interface, injected by internal/stack.
package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Allowlist is where webhooks may go. Build it with ParseAllowlist.
type Allowlist struct {
	any      bool
	hosts    map[string]bool
	suffixes []string
	prefixes []netip.Prefix
}

// ParseAllowlist reads allowlist entries:
//
//   - "hooks.example.com": that host name (any port);
//   - "*.example.com": every name under example.com (not example.com itself);
//   - "*": every host name (its addresses must still be public);
//   - "203.0.113.7", "10.0.0.0/8", "::1": URLs naming these addresses, and
//     the addresses a name may resolve to even if they are private,
//     loopback or link-local.
//
// No entry: nothing is allowed.
func ParseAllowlist(entries []string) (*Allowlist, error) {
	a := &Allowlist{hosts: map[string]bool{}}
	for _, raw := range entries {
		e := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(raw), "."))
		switch {
		case e == "":
			continue
		case e == "*":
			a.any = true
		case strings.Contains(e, "://"):
			return nil, fmt.Errorf("%q is a URL; list the host name only (hooks.example.com)", raw)
		case strings.Contains(e, "/"):
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return nil, fmt.Errorf("%q is not an IP range (write it like 10.0.0.0/8)", raw)
			}
			a.prefixes = append(a.prefixes, p.Masked())
		default:
			if ip, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
				a.prefixes = append(a.prefixes, netip.PrefixFrom(ip.Unmap(), ip.Unmap().BitLen()))
				continue
			}
			name, wildcard := strings.CutPrefix(e, "*.")
			if !validHostname(name) {
				return nil, fmt.Errorf("%q is not a host name, *.domain, *, an IP address or an IP range", raw)
			}
			if wildcard {
				a.suffixes = append(a.suffixes, "."+name)
			} else {
				a.hosts[name] = true
			}
		}
	}
	return a, nil
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// Empty reports whether the allowlist allows nothing.
func (a *Allowlist) Empty() bool {
	return a == nil || (!a.any && len(a.hosts) == 0 && len(a.suffixes) == 0 && len(a.prefixes) == 0)
}

// MaxURL bounds a webhook URL's length.
const MaxURL = 2048

// CheckURL refuses a URL that is not an absolute http(s) URL to an
// allowlisted host. Its errors are worded for the person who sent it.
func (a *Allowlist) CheckURL(raw string) error {
	if a.Empty() {
		return errors.New("webhooks are off: no host is allowed (WEBHOOK_ALLOWED_HOSTS is empty)")
	}
	if len(raw) > MaxURL {
		return fmt.Errorf("must be at most %d characters", MaxURL)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return errors.New("is not a URL")
	case u.Scheme != "http" && u.Scheme != "https":
		return errors.New("must be an http or https URL")
	case u.Host == "" || u.Hostname() == "":
		return errors.New("must name a host")
	case u.User != nil:
		return errors.New("must not carry a user name or password")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %q is not a port", p)
		}
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if ip, err := netip.ParseAddr(host); err == nil {
		if !a.inPrefixes(ip.Unmap()) {
			return fmt.Errorf("address %s is not on the allowlist", ip)
		}
		return nil
	}
	if !a.allowsName(host) {
		return fmt.Errorf("host %q is not on the allowlist", host)
	}
	return nil
}

func (a *Allowlist) allowsName(host string) bool {
	if a.any || a.hosts[host] {
		return true
	}
	for _, s := range a.suffixes {
		if strings.HasSuffix(host, s) {
			return true
		}
	}
	return false
}

func (a *Allowlist) inPrefixes(ip netip.Addr) bool {
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// AllowsAddress reports whether a connection to ip may be made: public
// addresses always, others only inside an allowlisted IP range.
func (a *Allowlist) AllowsAddress(ip netip.Addr) bool {
	ip = ip.Unmap()
	return (!a.Empty() && a.inPrefixes(ip)) || public(ip)
}

// notPublic are ranges that are neither loopback, private, link-local nor
// multicast by netip's methods, but are not the public internet either.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),      // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),  // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),   // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),  // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),    // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),   // NAT64: maps IPv4, private ones too
	netip.MustParsePrefix("64:ff9b:1::/48"), // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),  // documentation
	netip.MustParsePrefix("100::/64"),       // discard-only
	netip.MustParsePrefix("2002::/16"),      // 6to4: embeds any IPv4
	netip.MustParsePrefix("fec0::/10"),      // deprecated site-local
	netip.MustParsePrefix("2001::/32"),      // Teredo: embeds any IPv4
	netip.MustParsePrefix("192.88.99.0/24"), // 6to4 relay anycast
	netip.MustParsePrefix("255.255.255.255/32"),
}

func public(ip netip.Addr) bool {
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

// ErrForbiddenAddress is a connection refused because the address it would
// reach is not public and not allowlisted.
var ErrForbiddenAddress = errors.New("address is not public and not on the allowlist")

// Options build a Client.
type Options struct {
	Allow *Allowlist
	// Timeout bounds one delivery, from dialling to the end of the answer
	// (10s when zero).
	Timeout   time.Duration
	UserAgent string
}

// Client delivers webhooks. It is safe for concurrent use.
type Client struct {
	allow *Allowlist
	http  *http.Client
	ua    string
}

// NewClient returns a client that dials only addresses the allowlist
// permits, uses no proxy (a proxy would dial for us, unchecked) and follows
// no redirect (the target of a redirect was never checked).
func NewClient(o Options) *Client {
	if o.Allow == nil {
		o.Allow = &Allowlist{hosts: map[string]bool{}}
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.UserAgent == "" {
		o.UserAgent = "taskstack-webhook/1"
	}
	allow := o.Allow
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		// Control runs for every address tried, after DNS: the check that
		// counts.
		Control: func(_, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, address)
			}
			if !allow.AllowsAddress(ap.Addr()) {
				return fmt.Errorf("%w: %s", ErrForbiddenAddress, ap.Addr())
			}
			return nil
		},
	}
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           dialer.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          100,
		MaxIdleConnsPerHost:   10,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: o.Timeout,
	}
	return &Client{
		allow: allow,
		ua:    o.UserAgent,
		http: &http.Client{
			Transport: transport,
			Timeout:   o.Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// Check refuses a URL the client would never deliver to (see
// Allowlist.CheckURL).
func (c *Client) Check(raw string) error { return c.allow.CheckURL(raw) }

// StatusError is an answer other than 2xx.
type StatusError struct {
	Status int
	// RetryAfter is the delay the receiver asked for (Retry-After), if any.
	Delay time.Duration
}

func (e *StatusError) Error() string {
	msg := fmt.Sprintf("webhook answered %d %s", e.Status, http.StatusText(e.Status))
	if e.Delay > 0 {
		msg += fmt.Sprintf(" (retry after %s)", e.Delay)
	}
	return msg
}

// Permanent reports whether retrying cannot help: any answer but 408, 425,
// 429 and 5xx.
func (e *StatusError) Permanent() bool {
	switch {
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooEarly,
		e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return false
	}
	return true
}

// RetryAfter is the delay the receiver asked for before a retry (zero: none).
func (e *StatusError) RetryAfter() time.Duration { return e.Delay }

// forbiddenError is a delivery refused by the allowlist: permanent.
type forbiddenError struct{ err error }

func (e *forbiddenError) Error() string   { return e.err.Error() }
func (e *forbiddenError) Unwrap() error   { return e.err }
func (e *forbiddenError) Permanent() bool { return true }

// Send POSTs body (JSON) to rawURL with an Idempotency-Key header, so the
// receiver can recognise a retry of a delivery it already has. It returns
// nil on a 2xx answer, a *StatusError for any other, and an error that
// says Permanent() for a URL or address the allowlist refuses; other
// errors (timeouts, refused connections) are worth retrying.
func (c *Client) Send(ctx context.Context, rawURL string, body []byte, idempotencyKey string) (int, error) {
	if err := c.allow.CheckURL(rawURL); err != nil {
		return 0, &forbiddenError{fmt.Errorf("url: %w", err)}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, rawURL, bytes.NewReader(body))
	if err != nil {
		return 0, &forbiddenError{err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", c.ua)
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if errors.Is(err, ErrForbiddenAddress) {
			return 0, &forbiddenError{err}
		}
		return 0, err
	}
	defer resp.Body.Close()
	// Read a little of the answer so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, &StatusError{Status: resp.StatusCode, Delay: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// retryAfter reads a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		return max(0, time.Duration(n)*time.Second)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, t.Sub(now).Round(time.Second))
	}
	return 0
}
