package benchproc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis is a benchmark's own redis-server, with a client to it.
type Redis struct {
	*Proc
	// Addr is the server's host:port.
	Addr string
	// Client is a client to the server.
	Client *redis.Client
}

// StartRedis starts a redis-server in dir, logging to dir/redis.log, with
// no snapshots and, if aof, an append-only file synced every second. It
// returns once the server answers PING; ownGroup is Spec.OwnGroup.
func StartRedis(dir string, aof, ownGroup bool) (*Redis, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	args := []string{"--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "",
		"--daemonize", "no", "--protected-mode", "no", "--loglevel", "warning"}
	if aof {
		args = append(args, "--appendonly", "yes", "--appendfsync", "everysec")
	} else {
		args = append(args, "--appendonly", "no")
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found: apt-get install -y redis-server")
	}
	p, err := Start(Spec{Bin: bin, Args: args, Log: filepath.Join(dir, "redis.log"), OwnGroup: ownGroup})
	if err != nil {
		return nil, err
	}
	r := &Redis{Proc: p, Addr: addr, Client: redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})}
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		err := r.Client.Ping(ctx).Err()
		cancel()
		if err == nil {
			return r, nil
		}
		if time.Now().After(deadline) {
			r.Close()
			return nil, fmt.Errorf("redis-server on %s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Flush empties every database (FLUSHALL).
func (r *Redis) Flush(ctx context.Context) error {
	return r.Client.FlushAll(ctx).Err()
}

// CommandsProcessed is INFO stats total_commands_processed.
func (r *Redis) CommandsProcessed(ctx context.Context) (int64, error) {
	s, err := r.Client.Info(ctx, "stats").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(s, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("no total_commands_processed in INFO stats")
}

// CPUSeconds is INFO cpu used_cpu_user + used_cpu_sys of the server. It
// shadows Proc.CPUSeconds, which reads the same from /proc.
func (r *Redis) CPUSeconds(ctx context.Context) (float64, error) {
	s, err := r.Client.Info(ctx, "cpu").Result()
	if err != nil {
		return 0, err
	}
	var total float64
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimSpace(line)
		for _, k := range []string{"used_cpu_user:", "used_cpu_sys:"} {
			if v, ok := strings.CutPrefix(line, k); ok {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil {
					return 0, err
				}
				total += f
			}
		}
	}
	return total, nil
}

// Close closes the client and stops the server.
func (r *Redis) Close() {
	_ = r.Client.Close()
	r.Stop()
}
