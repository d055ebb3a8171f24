-- wrk script: replay pre-signed Standard Webhooks deliveries, each exactly once.
--
-- BENCH_REQUESTS names a file of lines "webhook-id<TAB>timestamp<TAB>signature<TAB>body";
-- thread n of N sends lines n, n+N, n+2N, ... (so no delivery id is sent twice).
-- BENCH_RATE (requests/s over all threads, 0 = as fast as possible) paces the
-- sends on a fixed schedule: a late slot is sent at once (catching up) rather
-- than skipped, so a stall shows up as latency, not as a lower offered rate.
-- Prints one JSON line at the end.

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_usec; } bench_timeval;
  int gettimeofday(bench_timeval *tv, void *tz);
]]
local tv = ffi.new("bench_timeval")
local function now_ms()
  ffi.C.gettimeofday(tv, nil)
  return tonumber(tv.tv_sec) * 1000 + tonumber(tv.tv_usec) / 1000
end

local path = os.getenv("BENCH_REQUESTS")
local rate = tonumber(os.getenv("BENCH_RATE") or "0")
local target = os.getenv("BENCH_PATH") or "/webhooks/canonical"

local threads = {}
local counter = 0

function setup(thread)
  thread:set("index", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  requests = {}
  local n = 0
  for line in io.lines(path) do
    if n % nthreads == index then
      local id, ts, sig, body = line:match("^([^\t]*)\t([^\t]*)\t([^\t]*)\t(.*)$")
      local headers = {
        ["Content-Type"] = "application/json",
        ["webhook-id"] = id,
        ["webhook-timestamp"] = ts,
        ["webhook-signature"] = sig,
      }
      table.insert(requests, wrk.format("POST", target, headers, body))
    end
    n = n + 1
  end
  cursor = 0
  nlines = #requests
  statuses = {}
  interval = 0
  if rate > 0 then interval = nthreads * 1000.0 / rate end
  next_at = 0
end

function delay()
  if interval == 0 then return 0 end
  local now = now_ms()
  if next_at == 0 then next_at = now end
  local slot = next_at
  next_at = next_at + interval
  if slot <= now then return 0 end
  return slot - now
end

function request()
  cursor = cursor + 1
  if cursor > #requests then cursor = 1 end  -- ran out: repeats are counted as duplicates
  return requests[cursor]
end

function response(status, headers, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  local lines = 0
  for _, thread in ipairs(threads) do
    local s = thread:get("statuses")
    for k, v in pairs(s) do merged[k] = (merged[k] or 0) + v end
    lines = lines + thread:get("nlines")
  end
  local parts = {}
  for k, v in pairs(merged) do table.insert(parts, string.format('"%s": %d', k, v)) end
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, ' ..
    '"timeouts": %d, "status_errors": %d, "lines": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, ' ..
    '"max_us": %d, "mean_us": %f, "statuses": {%s}}\n',
    summary.requests, summary.duration, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, summary.errors.status, lines, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, latency.mean, table.concat(parts, ", ")))
end
