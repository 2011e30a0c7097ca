-- wrk script of the end-to-end tests: paces each connection (E2E_WRK_DELAY_MS between a
-- response and the next request, so the load leaves CPU to the servers and to gray on a small
-- machine) and prints its counts as one JSON line when wrk stops (SIGINT or -d).
--   status: answers with a status >= 400; connect/read/write/timeout: socket errors.

local pace_ms = tonumber(os.getenv("E2E_WRK_DELAY_MS") or "0") or 0
if pace_ms > 0 then
  delay = function()
    return pace_ms
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'E2E_WRK {"requests":%d,"duration_us":%d,"bytes":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"latency_p50_us":%d,"latency_p99_us":%d,"latency_max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
