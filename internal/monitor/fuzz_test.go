package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"taskstack/internal/config"
)

// FuzzQueueFilter: the ?queues= list becomes one PromQL label matcher
// whose value is a quoted literal regexp matching exactly the names given:
// a queue name cannot end the matcher, add another one or widen the match.
func FuzzQueueFilter(f *testing.F) {
	for _, s := range []string{"", "high", "high,low", " high , ,low ", `a"}`, `.*`, `x|y`, "a\\", `"} or vector(1) #`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		if !utf8.ValidString(list) {
			return // refused by fetch (FuzzMetricsParams)
		}
		var names []string
		for n := range strings.SplitSeq(list, ",") {
			if n = strings.TrimSpace(n); n != "" {
				names = append(names, n)
			}
		}
		got := queueFilter(list)
		if len(names) == 0 {
			if got != "" {
				t.Fatalf("%q: filter %q for no queue", list, got)
			}
			return
		}
		quoted, ok := strings.CutPrefix(got, "queue=~")
		if !ok {
			t.Fatalf("%q: filter %q is not a queue=~ matcher", list, got)
		}
		re, err := strconv.Unquote(quoted)
		if err != nil || strconv.Quote(re) != quoted {
			t.Fatalf("%q: matcher value %s is not one quoted string: %v", list, quoted, err)
		}
		// Prometheus anchors label regexps; RE2 is Go's regexp.
		anchored, err := regexp.Compile("^(?:" + re + ")$")
		if err != nil {
			t.Fatalf("%q: regexp %q does not compile: %v", list, re, err)
		}
		for _, n := range names {
			if !anchored.MatchString(n) {
				t.Fatalf("%q: regexp %q does not match queue %q", list, re, n)
			}
			if wider := n + "x"; !strings.Contains(list, wider) && anchored.MatchString(wider) {
				t.Fatalf("%q: regexp %q also matches %q", list, re, wider)
			}
		}
	})
}

// FuzzMetricsParams sends any duration, endtime and queues to the
// dashboard's metrics view in front of a fake Prometheus: bad values are a
// 400; good ones become range queries Prometheus accepts (start before end,
// a step of at least a second, at most 11,000 points).
func FuzzMetricsParams(f *testing.F) {
	f.Add("3600", "1700000000", "high,low")
	f.Add("", "", "")
	f.Add("0", "x", "")
	f.Add("9223372036854775807", "", "")
	f.Add("2592001", "-1", `a"}`)
	f.Add("1", "9223372036854775807", "")
	var fail string
	fake := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		start, err1 := strconv.ParseInt(q.Get("start"), 10, 64)
		end, err2 := strconv.ParseInt(q.Get("end"), 10, 64)
		step, err3 := strconv.ParseInt(q.Get("step"), 10, 64)
		switch {
		case err1 != nil || err2 != nil || err3 != nil:
			fail = "unparsable range " + r.URL.RawQuery
		case end < start:
			fail = "end before start: " + r.URL.RawQuery
		case step < 1:
			fail = "step below 1s: " + r.URL.RawQuery
		case (end-start)/step > 11000:
			fail = "more than 11,000 points: " + r.URL.RawQuery
		}
		if fail != "" {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"status": "error", "error": fail})
			return
		}
		_, _ = w.Write([]byte(`{"status":"success","data":{"resultType":"matrix","result":[]}}`))
	}))
	f.Cleanup(fake.Close)
	p := &promMetrics{base: fake.URL, client: fake.Client(), timeout: 5 * time.Second, now: func() time.Time { return time.Unix(1700000000, 0) }}
	f.Fuzz(func(t *testing.T, duration, endtime, queues string) {
		fail = ""
		v := url.Values{}
		for k, s := range map[string]string{"duration": duration, "endtime": endtime, "queues": queues} {
			if s != "" {
				v.Set(k, s)
			}
		}
		_, err := p.fetch(context.Background(), v)
		if fail != "" {
			t.Fatalf("duration=%q endtime=%q: Prometheus would refuse: %s", duration, endtime, fail)
		}
		var pe *promError
		if err != nil && (!errors.As(err, &pe) || pe.status != http.StatusBadRequest) {
			t.Fatalf("duration=%q endtime=%q queues=%q: %v, want success or a 400", duration, endtime, queues, err)
		}
	})
}

// FuzzRootPath: whatever MONITOR_ROOT_PATH the configuration accepts, the
// monitor builds its routes (ServeMux panics on a bad pattern) and serves
// its metrics view under it and nothing outside it.
func FuzzRootPath(f *testing.F) {
	for _, s := range []string{"/", "/monitor", "/a/b/", "", "monitor", "/{x}", "/a b", "/%2f", "/.", "/..", "//", "/a//b", "/~user"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, root string) {
		cfg, err := config.LoadMonitor(func(k string) string {
			switch k {
			case "MONITOR_ROOT_PATH":
				return root
			}
			return ""
		})
		if err != nil {
			return
		}
		// The routes of a monitor, without its Redis clients: only the
		// metrics view (off) is served here.
		m := &Monitor{o: Options{RootPath: cfg.RootPath}, log: slog.New(slog.DiscardHandler), prom: &promMetrics{}}
		m.handler = m.routes()
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://monitor"+cfg.RootPath+"/api/metrics", nil))
		if rec.Code != http.StatusNotFound || !strings.Contains(rec.Body.String(), "MONITOR_PROMETHEUS_URL") {
			t.Fatalf("root %q: GET %s/api/metrics = %d %q, want the view's own 404", root, cfg.RootPath, rec.Code, rec.Body)
		}
		if cfg.RootPath != "" {
			rec = httptest.NewRecorder()
			m.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://monitor/api/metrics", nil))
			if rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "MONITOR_PROMETHEUS_URL") {
				t.Fatalf("root %q: /api/metrics outside the root answered %d %q", root, rec.Code, rec.Body)
			}
		}
	})
}
