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

// TestListQueryValues: the filters a list was read with are the ones its
// links carry on (and the key its snapshot is shared under), and no empty
// filter is added.
func TestListQueryValues(t *testing.T) {
	t.Parallel()
	const full = "q=boom&queue=high&since=2026-01-02T03%3A04%3A05Z&state=retry&type=demo%3Aecho&until=2026-01-03T00%3A00%3A00Z"
	v, _ := url.ParseQuery(full)
	q, err := parseListQuery(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := q.values().Encode(); got != full {
		t.Errorf("values() = %s, want %s", got, full)
	}
	if got := (listQuery{}).values().Encode(); got != "" {
		t.Errorf("no filter: values() = %q, want none", got)
	}
}

// TestHasNext: a next page exists while tasks remain, up to MaxPage.
func TestHasNext(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		page, size, total int
		want              bool
	}{
		{1, 10, 11, true},
		{1, 10, 10, false},
		{2, 10, 30, true},
		{MaxPage - 1, 1, MaxPage + 5, true},
		{MaxPage, 1, MaxPage + 5, false},
	} {
		if got := hasNext(listQuery{Page: c.page, PageSize: c.size}, c.total); got != c.want {
			t.Errorf("hasNext(page %d of %d, total %d) = %v, want %v", c.page, c.size, c.total, got, c.want)
		}
	}
}
