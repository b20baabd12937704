-- GET one path with one extra header (a session cookie or a bearer token), from the
-- environment: BENCH_PATH, BENCH_HEADER ("Name: value").
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local path = os.getenv("BENCH_PATH")
local name, value = string.match(os.getenv("BENCH_HEADER") or "", "^([^:]+):%s*(.*)$")
local headers = {}
if name then headers[name] = value end
local req
sent = 0

-- Formatted in init(): wrk only knows the Host header once its own init has run.
init = function(args)
  req = wrk.format("GET", path, headers)
end

request = function()
  sent = sent + 1
  return req
end

setup = common.setup
response = common.response
done = common.done
