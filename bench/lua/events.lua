-- Merchant events: POST /api/v1/events with bodies signed in advance by the driver (sign-ups
-- and payments, 10 % exact replays of earlier events). BENCH_EVENTS_FILE holds one request a
-- line: "<X-Partner-Signature>\t<body>". Past the end of the file the script starts over (those
-- requests are replays too, and the driver counts them as such).
local common = dofile(os.getenv("BENCH_LUA_DIR") .. "/common.lua")

local lines = {}
local n = 0
sent = 0

-- Formatted in init(): wrk only knows the Host header once its own init has run.
init = function(args)
  for line in io.lines(os.getenv("BENCH_EVENTS_FILE")) do
    local sig, body = string.match(line, "^([^\t]+)\t(.*)$")
    lines[#lines + 1] = wrk.format("POST", "/api/v1/events", {
      ["Content-Type"] = "application/json",
      ["X-Partner-Signature"] = sig,
    }, body)
  end
  n = #lines
end

request = function()
  sent = sent + 1
  return lines[(sent - 1) % n + 1]
end

setup = common.setup
response = common.response
done = common.done
