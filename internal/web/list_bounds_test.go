package web

import (
	"net/url"
	"strconv"
	"strings"
	"testing"

	"taskstack/internal/store"
)

// TestListQueryBounds: page, page size and search text accept both ends of
// their ranges and refuse one past them.
func TestListQueryBounds(t *testing.T) {
	t.Parallel()
	for query, ok := range map[string]bool{
		"page=1":                          true,
		"page=" + strconv.Itoa(MaxPage):   true,
		"page=0":                          false,
		"page=" + strconv.Itoa(MaxPage+1): false,
		"page_size=1":                     true,
		"page_size=" + strconv.Itoa(store.MaxPageSize):   true,
		"page_size=" + strconv.Itoa(store.MaxPageSize+1): false,
		"q=" + strings.Repeat("a", maxSearchText):        true,
		"q=" + strings.Repeat("a", maxSearchText+1):      false,
	} {
		v, err := url.ParseQuery(query)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseListQuery(v); (err == nil) != ok {
			t.Errorf("%.40s: %v, want accepted %v", query, err, ok)
		}
	}
}
