package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"taskstack/internal/testsupport"
)

// stack is a Redis plus the app and worker binaries running against it.
type stack struct {
	redis       *testsupport.Redis
	app         *testsupport.Process
	worker      *testsupport.Process
	appURL      string
	appAdminURL string // the app's /metrics
	adminURL    string // the worker's admin port
}

// startStack starts redis, the worker and the app; extra env applies to both.
func startStack(t *testing.T, extra map[string]string) *stack {
	t.Helper()
	appBin := testsupport.BuildBinary(t, "app")
	workerBin := testsupport.BuildBinary(t, "worker")
	r := testsupport.StartRedis(t)
	appAddr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	appAdminAddr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	adminAddr := fmt.Sprintf("127.0.0.1:%d", testsupport.FreePort(t))
	env := func(own map[string]string) map[string]string {
		m := map[string]string{"REDIS_URL": r.URL, "LOG_LEVEL": "debug", "LOG_FORMAT": "json", "TASK_RETENTION": "1h"}
		for k, v := range extra {
			m[k] = v
		}
		for k, v := range own {
			m[k] = v
		}
		return m
	}
	s := &stack{redis: r, appURL: "http://" + appAddr, appAdminURL: "http://" + appAdminAddr, adminURL: "http://" + adminAddr}
	s.worker = testsupport.StartProcess(t, workerBin, env(map[string]string{"WORKER_ADMIN_ADDR": adminAddr, "OTEL_SERVICE_NAME": "worker"}))
	s.app = testsupport.StartProcess(t, appBin, env(map[string]string{"APP_ADDR": appAddr, "APP_ADMIN_ADDR": appAdminAddr, "OTEL_SERVICE_NAME": "app"}))
	testsupport.WaitHTTP(t, s.worker, s.adminURL+"/readyz", 60*time.Second)
	testsupport.WaitHTTP(t, s.app, s.appURL+"/readyz", 60*time.Second)
	return s
}

type created struct {
	ID    string `json:"id"`
	Queue string `json:"queue"`
	State string `json:"state"`
	Links struct {
		Self string `json:"self"`
	} `json:"links"`
}

func submit(t *testing.T, baseURL, body string) created {
	t.Helper()
	resp, err := testsupport.HTTPClient().Post(baseURL+"/api/v1/tasks", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /api/v1/tasks: %d %s", resp.StatusCode, b)
	}
	var c created
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

type taskView struct {
	ID        string  `json:"id"`
	State     string  `json:"state"`
	Result    *string `json:"result"`
	LastError string  `json:"last_error"`
}

func getJSON(t *testing.T, u string, v any) int {
	t.Helper()
	resp, err := testsupport.HTTPClient().Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil && resp.StatusCode == http.StatusOK {
		t.Fatalf("GET %s: %v", u, err)
	}
	return resp.StatusCode
}

func waitState(t *testing.T, baseURL, self, state string, timeout time.Duration) taskView {
	t.Helper()
	var tv taskView
	testsupport.Eventually(t, timeout, self+" "+state, func() bool {
		tv = taskView{}
		return getJSON(t, baseURL+self, &tv) == http.StatusOK && tv.State == state
	})
	return tv
}

// submitForm posts the page's form without following the redirect.
func submitForm(t *testing.T, baseURL string, form url.Values) *http.Response {
	t.Helper()
	client := testsupport.HTTPClient()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := client.PostForm(baseURL+"/tasks", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
