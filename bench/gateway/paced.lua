-- wrk script for bench/gateway's `paced` measurement: every connection waits a random time
-- (exponentially distributed) before each request, so that together they offer about
-- BENCH_PACED_RATE requests/s: many connections at once, but no queue of work, as on a
-- machine that is not saturated. What it shows is the latency a proxy adds under
-- concurrency, apart from the queueing that a saturated machine adds (the `wrk` measurement).
local rate = tonumber(os.getenv("BENCH_PACED_RATE"))
local connections = tonumber(os.getenv("BENCH_CONNECTIONS"))
local mean_ms = 1000 * connections / rate

function init(args)
   -- Each thread has its own Lua state: seed each differently (a fresh table's address).
   math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)") or "0", 16) % 1000003)
end

function delay()
   return -mean_ms * math.log(1 - math.random())
end
