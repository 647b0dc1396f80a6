package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// DefaultPrometheusTimeout bounds one refresh of the dashboard's metrics
// view (nine range queries run at once).
const DefaultPrometheusTimeout = 10 * time.Second

// Bounds of the view's range (found by FuzzMetricsParams: a duration in
// seconds past ~292 years overflowed time.Duration and asked Prometheus for
// a range that ends before it starts). asynqmon's UI offers up to 8 days.
const (
	maxMetricsRange = 366 * 24 * time.Hour
	maxEndTime      = 253402300799 // 9999-12-31T23:59:59Z
)

// maxPrometheusBody caps one query's answer; a week at a 3m step for a few
// queues is far below it.
const maxPrometheusBody = 16 << 20

// promQueries are asynqmon v0.7.2's queries and the JSON fields its UI reads
// them from (metrics_handler.go upstream). QUEUE_FILTER becomes the optional
// queue matcher.
var promQueries = []struct{ field, query string }{
	{"queue_size", `asynq_queue_size{QUEUE_FILTER}`},
	{"queue_latency_seconds", `asynq_queue_latency_seconds{QUEUE_FILTER}`},
	{"queue_memory_usage_approx_bytes", `asynq_queue_memory_usage_approx_bytes{QUEUE_FILTER}`},
	{"tasks_processed_per_second", `rate(asynq_tasks_processed_total{QUEUE_FILTER}[5m])`},
	{"tasks_failed_per_second", `rate(asynq_tasks_failed_total{QUEUE_FILTER}[5m])`},
	{"error_rate", `rate(asynq_tasks_failed_total{QUEUE_FILTER}[5m]) / rate(asynq_tasks_processed_total{QUEUE_FILTER}[5m])`},
	{"pending_tasks_by_queue", `asynq_tasks_enqueued_total{state="pending",QUEUE_FILTER}`},
	{"retry_tasks_by_queue", `asynq_tasks_enqueued_total{state="retry",QUEUE_FILTER}`},
	{"archived_tasks_by_queue", `asynq_tasks_enqueued_total{state="archived",QUEUE_FILTER}`},
}

// promMetrics answers asynqmon's GET <root>/api/metrics in place of its own
// handler, which queries Prometheus with http.DefaultClient (no timeout, so a
// hung Prometheus holds the request and nine goroutines forever), passes
// Prometheus error bodies through as if they were data, and answers 500 when
// no Prometheus is configured (asynqmon #252, #287). Same query parameters
// (duration in seconds, endtime in Unix seconds, queues=a,b), same queries,
// same JSON fields: each one Prometheus's own query_range answer.
type promMetrics struct {
	base    string // Prometheus base URL, no trailing slash; "" when not configured
	client  *http.Client
	timeout time.Duration
	now     func() time.Time
}

type promError struct {
	status int
	msg    string
}

func (e *promError) Error() string { return e.msg }

func (p *promMetrics) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := p.fetch(r.Context(), r.URL.Query())
	if err != nil {
		var pe *promError
		if !errors.As(err, &pe) {
			pe = &promError{status: http.StatusBadGateway, msg: err.Error()}
		}
		http.Error(w, pe.msg, pe.status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}

func (p *promMetrics) fetch(ctx context.Context, q url.Values) ([]byte, error) {
	if p.base == "" {
		return nil, &promError{http.StatusNotFound, "metrics view is off: MONITOR_PROMETHEUS_URL is not set"}
	}
	duration, end := time.Hour, p.now()
	if d := q.Get("duration"); d != "" {
		n, err := strconv.ParseInt(d, 10, 64)
		if err != nil || n <= 0 || n > int64(maxMetricsRange/time.Second) {
			return nil, &promError{http.StatusBadRequest, fmt.Sprintf("invalid duration %q: want seconds, at most %d", d, int64(maxMetricsRange/time.Second))}
		}
		duration = time.Duration(n) * time.Second
	}
	if t := q.Get("endtime"); t != "" {
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil || n < 0 || n > maxEndTime {
			return nil, &promError{http.StatusBadRequest, fmt.Sprintf("invalid endtime %q: want Unix seconds", t)}
		}
		end = time.Unix(n, 0)
	}
	queues := q.Get("queues")
	if !utf8.ValidString(queues) {
		return nil, &promError{http.StatusBadRequest, "invalid queues: not UTF-8"}
	}
	filter := queueFilter(queues)

	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	out := make(map[string]json.RawMessage, len(promQueries))
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, pq := range promQueries {
		query := strings.ReplaceAll(pq.query, "QUEUE_FILTER", filter)
		wg.Go(func() {
			msg, err := p.queryRange(ctx, query, end.Add(-duration), end, step(duration))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, fmt.Errorf("prometheus query %s: %w", query, err))
				cancel() // one failure fails the view: stop the others
				return
			}
			out[pq.field] = msg
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		err := errs[0]
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, &promError{http.StatusGatewayTimeout, fmt.Sprintf("Prometheus did not answer within %s: %v", p.timeout, err)}
		}
		return nil, &promError{http.StatusBadGateway, err.Error()}
	}
	return json.Marshal(out)
}

func (p *promMetrics) queryRange(ctx context.Context, query string, start, end time.Time, step time.Duration) (json.RawMessage, error) {
	v := url.Values{}
	v.Set("query", query)
	v.Set("start", strconv.FormatInt(start.Unix(), 10))
	v.Set("end", strconv.FormatInt(end.Unix(), 10))
	v.Set("step", strconv.Itoa(int(step.Seconds())))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.base+"/api/v1/query_range?"+v.Encode(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxPrometheusBody+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxPrometheusBody {
		return nil, fmt.Errorf("answer larger than %d bytes", maxPrometheusBody)
	}
	if resp.StatusCode != http.StatusOK {
		var perr struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(body, &perr) == nil && perr.Error != "" {
			return nil, fmt.Errorf("%s: %s", resp.Status, perr.Error)
		}
		return nil, fmt.Errorf("%s", resp.Status)
	}
	if !json.Valid(body) {
		return nil, errors.New("answer is not JSON (is MONITOR_PROMETHEUS_URL the Prometheus base URL?)")
	}
	return body, nil
}

// queueFilter returns the PromQL matcher for a comma-separated queue list
// (UTF-8, checked by fetch), with each name quoted so a queue name cannot
// change the query.
func queueFilter(list string) string {
	var names []string
	for n := range strings.SplitSeq(list, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, regexp.QuoteMeta(n))
		}
	}
	if len(names) == 0 {
		return ""
	}
	return "queue=~" + strconv.Quote(strings.Join(names, "|"))
}

// step keeps a range query to a few thousand points, as asynqmon does.
func step(d time.Duration) time.Duration {
	switch {
	case d <= 6*time.Hour:
		return 10 * time.Second
	case d <= 24*time.Hour:
		return time.Minute
	case d <= 8*24*time.Hour:
		return 3 * time.Minute
	case d <= 30*24*time.Hour:
		return 10 * time.Minute
	}
	return max(d/3000, time.Second).Round(time.Second)
}
