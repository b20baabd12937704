-- Click redirect: GET /r/<code>?utm_source=bench over the measured partner's links. Every
-- other request is a new visitor (no aff_vid cookie and a user agent never seen, as a browser
-- on a new network would be); the rest are returning visitors (a signed aff_vid cookie from a
-- pool, so most of their clicks are repeats). BENCH_CLICK_DATA names a Lua file written by the
-- driver: return {codes = {...}, visitors = {...}}; BENCH_RUN is a token unique to this run
-- (it makes the new visitors' user agents new) and BENCH_SEED seeds the choices.
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")
local data = dofile(os.getenv("BENCH_CLICK_DATA"))

local codes, visitors = data.codes, data.visitors
local ncodes, nvisitors = #codes, #visitors
-- The most common browser string, made unique per new visitor by a suffix.
local ua_new = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
  .. "Chrome/126.0.0.0 Safari/537.36 bench/" .. os.getenv("BENCH_RUN") .. "."
local ua_returning = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
  .. "Chrome/126.0.0.0 Safari/537.36"
sent = 0
math.randomseed(tonumber(os.getenv("BENCH_SEED")) or 1)

request = function()
  sent = sent + 1
  local path = "/r/" .. codes[math.random(ncodes)] .. "?utm_source=bench"
  if sent % 2 == 0 then
    return wrk.format("GET", path, {["User-Agent"] = ua_new .. sent})
  end
  return wrk.format("GET", path, {
    ["User-Agent"] = ua_returning,
    ["Cookie"] = "aff_vid=" .. visitors[math.random(nvisitors)],
  })
end

setup = common.setup
response = common.response
done = common.done
