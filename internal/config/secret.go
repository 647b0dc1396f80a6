package config

import (
	"strings"
	"unicode"
)

// MinSecretLength is the least a production password or key may have.
const MinSecretLength = 16

// WeakSecret says what is wrong with a production secret, or "" when it is
// acceptable. The answer never contains the secret. A secret is weak when
// it is shorter than MinSecretLength, a placeholder, one short pattern
// repeated ("aaaa…", "passwordpassword", "abcabc…"), made of a handful of
// distinct characters, or a common password or word, possibly with digits
// or symbols around it ("Password123456!!").
func WeakSecret(s string) string {
	switch {
	case IsPlaceholder(s):
		return "is a placeholder; set a real secret"
	case len(s) < MinSecretLength:
		return "must be at least 16 characters"
	case repeated(s):
		return "is one short pattern repeated; use a random value (e.g. openssl rand -hex 24)"
	case distinct(s) < 6:
		return "uses fewer than 6 different characters; use a random value (e.g. openssl rand -hex 24)"
	case commonWord(s):
		return "is a common password or word; use a random value (e.g. openssl rand -hex 24)"
	}
	return ""
}

// repeated reports whether s is a unit of at most 8 characters repeated.
func repeated(s string) bool {
	for unit := 1; unit <= 8 && unit < len(s); unit++ {
		if strings.Repeat(s[:unit], len(s)/unit+1)[:len(s)] == s {
			return true
		}
	}
	return false
}

func distinct(s string) int {
	seen := map[rune]bool{}
	for _, r := range s {
		seen[unicode.ToLower(r)] = true
	}
	return len(seen)
}

// commonWord reports whether s, lower-cased and without the digits and
// symbols around it, is one of the words people use as passwords, or such
// a word twice.
func commonWord(s string) bool {
	core := strings.TrimFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) })
	core = strings.NewReplacer("@", "a", "0", "o", "1", "i", "3", "e", "$", "s", "4", "a", "5", "s", "7", "t").Replace(core)
	for _, w := range commonPasswords {
		if core == w || core == w+w {
			return true
		}
	}
	return false
}

// commonPasswords are the words most often found in leaked password lists
// and deployment examples (letters only: digits and symbols around them
// are stripped before comparing).
var commonPasswords = strings.Fields(`
password passwort passw0rd motdepasse contrasena secret supersecret topsecret
admin administrator root toor letmein welcome welcomeback changeme default
qwerty qwertyuiop qwertz azerty asdfgh asdfghjkl zxcvbnm iloveyou monkey dragon
master sunshine princess football baseball superman batman trustno shadow
michael jennifer hunter killer freedom whatever starwars computer internet
redis taskstack monitor operator grafana prometheus kubernetes docker
correcthorsebatterystaple abcdefghijklmnop abcdefghijklmnopqrstuvwxyz
development production staging database
`)
