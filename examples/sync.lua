-- lua5.4 examples/sync.lua DIR NAME...
-- Keep a local folder up to date: fetch each NAME from whichever server on
-- the LAN has it, in parallel, from one plain loop. (A sketch of what a sync
-- script looks like; discovery here stays on this host, 127.255.255.255.)
-- Use the checkout this script lives in (an installed rock works too).
local root = (arg[0]:match("^(.*)/examples/[^/]*$") or ".") .. "/lua/"
package.path = root .. "?.lua;" .. root .. "?/init.lua;" .. package.path
package.cpath = root .. "?.so;" .. package.cpath
local udpxfer = require "udpxfer"

local dir = assert(arg[1], "usage: lua5.4 examples/sync.lua DIR NAME...")
local pending = {}
for i = 2, #arg do
  pending[#pending + 1] = assert(udpxfer.get { name = arg[i], out = dir, broadcast = { "127.255.255.255" } })
end
local failed = 0
while #pending > 0 do
  local fds, timeout = {}, 1
  for i = #pending, 1, -1 do
    local g = pending[i]
    if g:step() then
      local res, err = g:result()
      print(res and ("ok     " .. res.path) or ("failed " .. g.opts.name .. ": " .. err))
      if not res then failed = failed + 1 end
      g:close()
      table.remove(pending, i)
    else
      fds[#fds + 1], fds[#fds + 2] = g:pollfd(), g:events()
      timeout = math.min(timeout, g:timeout() or 1)
    end
  end
  if #pending > 0 then udpxfer.core.poll(fds, timeout) end
end
os.exit(failed == 0 and 0 or 1)
