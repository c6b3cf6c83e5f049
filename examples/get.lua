-- lua examples/get.lua NAME [PORT] [BROADCAST|SERVER...]
-- Fetch NAME into the current directory through the Lua API.
-- Without addresses it asks 127.255.255.255 (this host only); pass real
-- broadcast or server addresses to search a LAN.
-- Use the checkout this script lives in (an installed rock works too).
if _VERSION ~= "Lua 5.4" then
  io.stderr:write(arg[0], ": udpxfer needs Lua 5.4, not ", _VERSION, " (run lua5.4, or: make deps)\n")
  os.exit(1)
end
local root = (arg[0]:match("^(.*)/examples/[^/]*$") or ".") .. "/lua/"
package.path = root .. "?.lua;" .. root .. "?/init.lua;" .. package.path
package.cpath = root .. "?.so;" .. package.cpath
local udpxfer = require "udpxfer"

local name, port = arg[1], tonumber(arg[2]) or udpxfer.DEFAULT_PORT
if not name then
  io.stderr:write("usage: lua examples/get.lua NAME [PORT] [ADDRESS...]\n")
  os.exit(2)
end
local targets = { table.unpack(arg, 3) }
if #targets == 0 then targets = { "127.255.255.255" } end

local g, err = udpxfer.get {
  name = name, port = port, broadcast = targets,
  on_start = function(ev) io.stderr:write(("%s: %d bytes from %s\n"):format(name, ev.size, ev.server)) end,
  on_progress = function(st) io.stderr:write(("\r%d / %d bytes"):format(st.bytes, st.size)) end,
}
if not g then
  io.stderr:write("error: ", err, "\n")
  os.exit(1)
end
local res, msg = g:run()
io.stderr:write("\n")
if not res then
  io.stderr:write("error: ", msg, "\n")
  os.exit(3)
end
print(res.path, res.sha256)
