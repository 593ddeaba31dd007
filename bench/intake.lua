-- wrk script for bench/ingest.py.
--
-- Requests are built once in init() from a file of bodies (one JSON body per line) and then cycled,
-- so that varying the user id costs wrk nothing per request and wrk stays far from being the bottleneck.
-- done() prints one JSON line, so bench/ingest.py never has to parse wrk's human-readable report.

local prepared = {}
local index = 0

function init(args)
  local headers = {
    ["DD-API-KEY"] = os.getenv("BENCH_API_KEY"),
    ["Content-Type"] = "application/json",
  }
  for body in io.lines(os.getenv("BENCH_BODIES")) do
    prepared[#prepared + 1] = wrk.format("POST", nil, headers, body)
  end
end

function request()
  index = index % #prepared + 1
  return prepared[index]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests":%d,"duration_us":%d,"non_2xx_3xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%.0f,"p99_us":%.0f}\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
