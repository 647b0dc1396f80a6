package web

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"taskstack/internal/guard"
)

type identityKey struct{}

// identity is who the request comes from (set by require).
func identity(ctx context.Context) guard.Identity {
	id, _ := ctx.Value(identityKey{}).(guard.Identity)
	return id
}

// require lets a request through only with scope. API clients get 401/403
// as problem+json (with a Bearer challenge); people get the login page.
func (s *Server) require(scope guard.Scope, ui bool, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := s.auth.Identify(r)
		if err != nil {
			// Tokens are 256-bit random: guessing one is hopeless, so a
			// valid credential always passes (clients behind one proxy
			// share an address), and an address that keeps presenting bad
			// ones is answered 429 instead of 401.
			if errors.Is(err, guard.ErrBadCredential) && s.o.Lockout != nil {
				if retryAfter, blocked := s.o.Lockout.RetryAfter(r); blocked {
					s.o.Lockout.Refused()
					p := newProblem(http.StatusTooManyRequests, guard.LockedOutMessage)
					p.retryAfter = retryAfter
					if ui {
						s.errorPage(w, r, p)
					} else {
						s.writeProblem(w, r, p)
					}
					return
				}
				s.o.Lockout.Failed(r, "", err)
			}
			if ui {
				s.loginPage(w, r, http.StatusUnauthorized, "")
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="taskstack"`)
			s.writeProblem(w, r, newProblem(http.StatusUnauthorized, err.Error()))
			return
		}
		note := auditNote(r.Context())
		note.Actor, note.Via = id.Name, id.Via
		if !id.Can(scope) {
			p := newProblem(http.StatusForbidden, "the credential "+strconv.Quote(id.Name)+" lacks the scope "+string(scope))
			if ui {
				s.errorPage(w, r, p)
				return
			}
			s.writeProblem(w, r, p)
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
	})
}

// loginPage asks for a token; next is where to go after logging in.
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, status int, msg string) {
	next := r.URL.RequestURI()
	if r.URL.Path == "/login" {
		next = safeNext(r.FormValue("next"))
	}
	_ = s.page.render(w, status, "login.html", map[string]any{
		"Title": "Log in", "Links": s.navLinks(r), "Next": next, "Error": msg,
	})
}

func (s *Server) getLogin(w http.ResponseWriter, r *http.Request) error {
	if s.auth.Open() {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return nil
	}
	s.loginPage(w, r, http.StatusOK, "")
	return nil
}

// postLogin checks a token and starts a session: the browser keeps a signed
// cookie, never the token.
func (s *Server) postLogin(w http.ResponseWriter, r *http.Request) error {
	if err := s.parseForm(w, r); err != nil {
		return err
	}
	if s.o.Tokens == nil || s.o.Sessions == nil {
		return newProblem(http.StatusNotFound, "logging in with a token is not configured here")
	}
	id, ok := s.o.Tokens.Verify(strings.TrimSpace(r.PostFormValue("token")))
	if !ok {
		if s.o.Lockout != nil {
			if s.o.Lockout.Blocked(w, r) {
				s.o.Lockout.Refused()
				return nil
			}
			s.o.Lockout.Failed(r, "", guard.ErrBadCredential)
		}
		s.loginPage(w, r, http.StatusUnauthorized, "That token is not valid.")
		return nil
	}
	s.o.Sessions.Start(w, id)
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
	return nil
}

func (s *Server) postLogout(w http.ResponseWriter, r *http.Request) error {
	if s.o.Sessions != nil {
		s.o.Sessions.End(w)
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
	return nil
}

// safeNext keeps a redirect after login on this site.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if err != nil || next == "" || u.IsAbs() || u.Host != "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// limitSubmit takes one submission from the caller's budget; over it the
// answer is 429 with Retry-After.
func (s *Server) limitSubmit(r *http.Request, n int) error {
	if s.grantSubmits(r, n) < n {
		return s.rateProblem(n)
	}
	return nil
}

// grantSubmits takes up to n submissions from the caller's budget and says
// how many it got.
func (s *Server) grantSubmits(r *http.Request, n int) int {
	if s.o.SubmitLimit.Rate() <= 0 {
		return n
	}
	id := identity(r.Context())
	key := id.Name
	if id.Via == guard.ViaOpen || key == "" {
		key = "ip:" + guard.RemoteIP(r)
	}
	got := s.o.SubmitLimit.AllowUpTo(key, n)
	if got < n {
		s.rejected.WithLabelValues("rate_limit").Add(float64(n - got))
	}
	return got
}

// rateProblem is the 429 for n submissions over the budget: Retry-After is
// when the budget will have refilled that many.
func (s *Server) rateProblem(n int) *problem {
	p := newProblem(http.StatusTooManyRequests, "too many task submissions for this credential; slow down")
	p.retryAfter = max(1, int(math.Ceil(float64(n)/max(s.o.SubmitLimit.Rate(), 1))))
	return p
}
