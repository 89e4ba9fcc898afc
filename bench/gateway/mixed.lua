-- wrk script: one request in 100 goes to the hub's own /healthz instead of the app, as a
-- browser's connections carry the hub's pages and API beside the app's requests. On envhub,
-- the byte path lends each such request to NIO's parser and takes the connection back after
-- it (before 4dc49d2 the first one left the connection to the parser for good, and this
-- measured gateway requests on NIO's parser path). (Other proxies answer /healthz with 404:
-- their non-2xx count is those requests.)
-- Use: BENCH_WRK_SCRIPT=bench/gateway/mixed.lua BENCH_MEASURE=wrk bench/gateway/run.sh
counter = 0
request = function()
  counter = counter + 1
  if counter % 100 == 0 then return wrk.format("GET", "/healthz") end
  return wrk.format("GET", nil)
end
