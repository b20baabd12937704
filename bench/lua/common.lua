-- Shared by the bench scripts (loaded with dofile). done() prints one JSON line that
-- bench/run.py reads: totals, latency percentiles and the HTTP status counts the thread kept.
local M = {}
local threads = {}

function M.setup(thread)
  table.insert(threads, thread)
end

-- Count statuses (only the scripts that install M.response pay for parsing bodies).
s2xx, s3xx, s4xx, s5xx, s409 = 0, 0, 0, 0, 0

function M.response(status, headers, body)
  if status == 409 then s409 = s409 + 1 end
  if status < 300 then s2xx = s2xx + 1
  elseif status < 400 then s3xx = s3xx + 1
  elseif status < 500 then s4xx = s4xx + 1
  else s5xx = s5xx + 1 end
end

function M.done(summary, latency, requests)
  local counts = {s2xx = 0, s3xx = 0, s4xx = 0, s5xx = 0, s409 = 0, sent = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(counts) do
      counts[name] = counts[name] + (tonumber(thread:get(name)) or 0)
    end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, "timeouts": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %.1f, ' ..
    '"s2xx": %d, "s3xx": %d, "s4xx": %d, "s5xx": %d, "s409": %d, "sent": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean,
    counts.s2xx, counts.s3xx, counts.s4xx, counts.s5xx, counts.s409, counts.sent))
end

return M
