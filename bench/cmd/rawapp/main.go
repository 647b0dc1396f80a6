// Command rawapp is the benchmark's baseline for the app: net/http and a bare
// asynq.Client, with the same task options taskstack gives demo:echo, and no
// validation, metrics, tracing or logging. It is not part of taskstack.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "rawapp:", err)
		os.Exit(1)
	}
}

type createRequest struct {
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload"`
	Queue   string          `json:"queue"`
}

func run(ctx context.Context, getenv func(string) string) error {
	client := asynq.NewClient(asynq.RedisClientOpt{Addr: getenv("REDIS_ADDR")})
	defer client.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("POST /api/v1/tasks", func(w http.ResponseWriter, r *http.Request) {
		var body createRequest
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&body); err != nil {
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		info, err := client.EnqueueContext(r.Context(), asynq.NewTask(body.Type, body.Payload,
			asynq.Queue(body.Queue), asynq.Timeout(11*time.Minute), asynq.MaxRetry(3), asynq.Retention(24*time.Hour)))
		if err != nil {
			http.Error(w, "enqueue failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]string{"id": info.ID, "queue": info.Queue, "type": info.Type, "state": info.State.String()})
	})
	handleProfiling(mux)
	srv := &http.Server{Addr: getenv("APP_ADDR"), Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
