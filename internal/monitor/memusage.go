package monitor

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"
)

// asynq's Inspector.GetQueueInfo, which asynqmon calls on nearly every page
// and the queue collector calls on every scrape, runs a Lua script that
// estimates a queue's memory by sampling its tasks with MEMORY USAGE. In
// asynq v0.26.0 the script adds up the answers unchecked, and MEMORY USAGE of
// a missing key is nil: one task ID whose hash is gone (evicted, deleted by
// hand, lost in a failover) makes the script fail with "attempt to perform
// arithmetic on local 'bytes' (a boolean value)". The dashboard then shows
// "Could not retrieve queues live data" for every queue (asynqmon #296,
// #332), and the collector exports no asynq_* series at all.
//
// The fix is upstream only on asynq master, which the module proxy does not
// serve. Until then, a go-redis hook on the monitor's Redis clients swaps
// that one script for a copy that counts a missing task as 0 bytes. Nothing
// else changes: every other command passes through untouched.

// asynqMemoryUsageSHA is the SHA-1 of asynq v0.26.0's memoryUsageCmd
// (internal/rdb/inspect.go). If asynq changes the script the hook stops
// matching and TestDanglingTaskID fails, which is the signal to recheck.
const asynqMemoryUsageSHA = "0c80fc1868e3aae205155ae2017ce995a3a7cec0"

// fixedMemoryUsageScript is asynq v0.26.0's script (MIT licence) with nil
// answers of MEMORY USAGE counted as 0 and an empty group sample guarded.
const fixedMemoryUsageScript = `
local sample_size = tonumber(ARGV[2])
if sample_size <= 0 then
    return redis.error_reply("sample size must be a positive number")
end
local memusg = 0
for i=1,2 do
    local ids = redis.call("LRANGE", KEYS[i], 0, sample_size - 1)
    local sample_total = 0
    if (table.getn(ids) > 0) then
        for _, id in ipairs(ids) do
            local bytes = redis.call("MEMORY", "USAGE", ARGV[1] .. id) or 0
            sample_total = sample_total + bytes
        end
        local n = redis.call("LLEN", KEYS[i])
        local avg = sample_total / table.getn(ids)
        memusg = memusg + (avg * n)
    end
    local m = redis.call("MEMORY", "USAGE", KEYS[i])
    if (m) then
        memusg = memusg + m
    end
end
for i=3,6 do
    local ids = redis.call("ZRANGE", KEYS[i], 0, sample_size - 1)
    local sample_total = 0
    if (table.getn(ids) > 0) then
        for _, id in ipairs(ids) do
            local bytes = redis.call("MEMORY", "USAGE", ARGV[1] .. id) or 0
            sample_total = sample_total + bytes
        end
        local n = redis.call("ZCARD", KEYS[i])
        local avg = sample_total / table.getn(ids)
        memusg = memusg + (avg * n)
    end
    local m = redis.call("MEMORY", "USAGE", KEYS[i])
    if (m) then
        memusg = memusg + m
    end
end
local groups = redis.call("SMEMBERS", KEYS[7])
if table.getn(groups) > 0 then
	local agg_task_count = 0
	local agg_task_sample_total = 0
	local agg_task_sample_size = 0
	for i, gname in ipairs(groups) do
		local group_key = ARGV[4] .. gname
		agg_task_count = agg_task_count + redis.call("ZCARD", group_key)
		if i <= tonumber(ARGV[3]) then
			local ids = redis.call("ZRANGE", group_key, 0, sample_size - 1)
			for _, id in ipairs(ids) do
				local bytes = redis.call("MEMORY", "USAGE", ARGV[1] .. id) or 0
				agg_task_sample_total = agg_task_sample_total + bytes
				agg_task_sample_size = agg_task_sample_size + 1
			end
		end
	end
	if agg_task_sample_size > 0 then
		local avg = agg_task_sample_total / agg_task_sample_size
		memusg = memusg + (avg * agg_task_count)
	end
end
return memusg
`

var fixedMemoryUsageSHA = func() string {
	h := sha1.Sum([]byte(fixedMemoryUsageScript))
	return hex.EncodeToString(h[:])
}()

// memoryUsageFix is the go-redis hook that substitutes the script, for both
// EVALSHA (the usual call) and EVAL (go-redis's retry after NOSCRIPT, which
// carries asynq's source; the fixed source then gets cached by Redis).
type memoryUsageFix struct{}

func (memoryUsageFix) DialHook(next redis.DialHook) redis.DialHook { return next }

func (memoryUsageFix) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (memoryUsageFix) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if len(args) > 1 {
			switch name := strings.ToLower(fmt.Sprint(args[0])); name {
			case "evalsha", "evalsha_ro":
				if sha, _ := args[1].(string); sha == asynqMemoryUsageSHA {
					args[1] = fixedMemoryUsageSHA
				}
			case "eval", "eval_ro":
				if src, _ := args[1].(string); sha1Hex(src) == asynqMemoryUsageSHA {
					args[1] = fixedMemoryUsageScript
				}
			}
		}
		return next(ctx, cmd)
	}
}

func sha1Hex(s string) string {
	h := sha1.Sum([]byte(s))
	return hex.EncodeToString(h[:])
}
