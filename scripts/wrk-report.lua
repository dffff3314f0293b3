-- wrk script for scripts/bench: sends BENCH_METHOD to the URL with BENCH_BODY and BENCH_HEADERS
-- ("Name: value|Name: value"), and prints one parseable line of figures at the end. With BENCH_GROUPS
-- ("a,b,c"), each request's body has "{group}" replaced by the next of them in turn, so that the load
-- spreads over several customers.
local method = os.getenv("BENCH_METHOD") or "GET"
local body = os.getenv("BENCH_BODY")
local headers = {}
for pair in string.gmatch(os.getenv("BENCH_HEADERS") or "", "[^|]+") do
  local name, value = string.match(pair, "^%s*([^:]+):%s*(.*)$")
  if name then headers[name] = value end
end
local bodies = {}
for group in string.gmatch(os.getenv("BENCH_GROUPS") or "", "[^,]+") do
  bodies[#bodies + 1] = (string.gsub(body, "{group}", group))
end
local sent = 0
-- With BENCH_DELAY_MS, each connection waits that long before each request: a steady offered load.
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause then
  delay = function() return pause end
end

init = function(args)
  -- Threads start at different customers.
  sent = math.random(0, 1000)
end

request = function()
  sent = sent + 1
  if #bodies > 0 then return wrk.format(method, nil, headers, bodies[sent % #bodies + 1]) end
  return wrk.format(method, nil, headers, body)
end

done = function(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local failed = summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout
  io.write(string.format("FIGURES requests=%d rps=%.1f p50_ms=%.2f p99_ms=%.2f failed=%d\n",
    summary.requests, summary.requests / seconds, latency:percentile(50) / 1000, latency:percentile(99) / 1000, failed))
end
