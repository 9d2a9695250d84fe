-- wrk script for the bench: print one JSON line with throughput, latency
-- percentiles (wrk's own --latency table has no p95) and the count of
-- answers that were not 2xx. wrk's summary.errors.status counts only
-- statuses >= 400, so a redirect to the login page would pass unseen;
-- every response is checked here instead, per thread, and summed in done().
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non_2xx = 0
  statuses = {}
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non_2xx = non_2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local bad = 0
  local seen = {}
  for _, thread in ipairs(threads) do
    bad = bad + thread:get("non_2xx")
    for status, count in pairs(thread:get("statuses")) do
      seen[status] = (seen[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(seen) do
    table.insert(parts, string.format('"%d": %d', status, count))
  end
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "bytes": %d, ' ..
    '"errors": %d, "non_2xx": %d, "statuses": {%s}, ' ..
    '"p50_ms": %.3f, "p95_ms": %.3f, "p99_ms": %.3f, "max_ms": %.3f}\n',
    summary.requests, seconds, summary.requests / seconds, summary.bytes,
    summary.errors.connect + summary.errors.read + summary.errors.write +
      summary.errors.timeout,
    bad, table.concat(parts, ", "),
    latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, latency.max / 1000))
end
