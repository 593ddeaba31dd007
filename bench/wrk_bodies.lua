-- wrk script for the benchmarks in bench/ (see harness.run_wrk).
--
-- Requests are built once in init() and then cycled, so that varying the bodies costs wrk nothing per
-- request and wrk stays far from being the bottleneck. BENCH_BODIES names a file that lists one body
-- file per line (bodies may be binary: gzip, protobuf); BENCH_HEADERS holds "Name: value" lines.
-- done() prints one JSON line, so the benchmarks never have to parse wrk's human-readable report.

local prepared = {}
local index = 0

function init(args)
  local headers = {}
  for line in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^\n]+") do
    local name, value = string.match(line, "^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  for path in io.lines(os.getenv("BENCH_BODIES")) do
    local file = assert(io.open(path, "rb"))
    local body = file:read("*a")
    file:close()
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
