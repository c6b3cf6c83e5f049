-- lua examples/serve.lua [DIR] [PORT]
-- Serve DIR (default ./data) through the Lua API, logging each request.
-- Use the checkout this script lives in (an installed rock works too).
if _VERSION ~= "Lua 5.4" then
  io.stderr:write(arg[0], ": udpxfer needs Lua 5.4, not ", _VERSION, " (run lua5.4, or: make deps)\n")
  os.exit(1)
end
local root = (arg[0]:match("^(.*)/examples/[^/]*$") or ".") .. "/lua/"
package.path = root .. "?.lua;" .. root .. "?/init.lua;" .. package.path
package.cpath = root .. "?.so;" .. package.cpath
local udpxfer = require "udpxfer"

local srv, err = udpxfer.serve {
  dir = arg[1] or "./data", port = tonumber(arg[2]),
  on_request = function(ev) print("request", ev.client, ev.name, ev.status) end,
  on_done = function(ev) print("done", ev.client, ev.name, ev.reason, ev.bytes_sent) end,
}
if not srv then
  io.stderr:write("error: ", err, "\n")
  os.exit(1)
end
print(("serving %s on UDP port %d"):format(arg[1] or "./data", srv:port()))
srv:run()
