package guard

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"
)

// SessionCookie is the name of the session cookie.
const SessionCookie = "taskstack_session"

// Sessions issue and check signed session cookies: a person logs in with a
// token once, and the browser carries a cookie instead of the token. The
// cookie holds the token's name and an ID derived from its hash (never the
// token), and an expiry, signed with HMAC-SHA256; removing the token from
// the tokens file ends its sessions too.
type Sessions struct {
	key    []byte
	ttl    time.Duration
	secure bool
	now    func() time.Time
}

// NewSessions signs with key (nil: a random key, so sessions end when the
// process does: dev only). secure sets the cookie's Secure flag (HTTPS
// only); leave it off only in dev over plain HTTP.
func NewSessions(key []byte, ttl time.Duration, secure bool) *Sessions {
	if len(key) == 0 {
		key = make([]byte, 32)
		_, _ = rand.Read(key)
	}
	return &Sessions{key: key, ttl: ttl, secure: secure, now: time.Now}
}

type session struct {
	Name    string `json:"n"`
	TokenID string `json:"t"`
	Expires int64  `json:"e"`
}

// Start sets the session cookie for id.
func (s *Sessions) Start(w http.ResponseWriter, id Identity) {
	exp := s.now().Add(s.ttl)
	body, _ := json.Marshal(session{Name: id.Name, TokenID: id.tokenID, Expires: exp.Unix()})
	payload := base64.RawURLEncoding.EncodeToString(body)
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: payload + "." + s.sign(payload), Path: "/",
		Expires: exp, MaxAge: int(s.ttl / time.Second),
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode,
	})
}

// End clears the session cookie.
func (s *Sessions) End(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteStrictMode,
	})
}

func (s *Sessions) sign(payload string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

var errBadSession = errors.New("bad session")

func (s *Sessions) verify(value string) (session, error) {
	payload, sig, ok := strings.Cut(value, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(s.sign(payload))) {
		return session{}, errBadSession
	}
	body, err := base64.RawURLEncoding.DecodeString(payload)
	if err != nil {
		return session{}, errBadSession
	}
	var sess session
	if err := json.Unmarshal(body, &sess); err != nil || sess.Name == "" {
		return session{}, errBadSession
	}
	if s.now().Unix() >= sess.Expires {
		return session{}, errBadSession
	}
	return sess, nil
}
