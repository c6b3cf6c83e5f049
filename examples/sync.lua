-- lua examples/sync.lua [--delete] REMOTE DIR [ADDRESS...]
-- Keep the local folder DIR in step with the folder REMOTE that servers on
-- the LAN offer ("." for a server's whole tree, or a share's name): the
-- script to put in cron. It prints one summary line and exits 0, or prints
-- the error and exits 1. A second run moves only what changed.
-- Without addresses it asks 127.255.255.255 (this host only); give the
-- LAN's broadcast address or servers' addresses to search a network.
--
--   */10 * * * *  lua /opt/udpxfer/examples/sync.lua --delete docs /srv/docs 192.168.1.255
--
-- Use the checkout this script lives in (an installed rock works too).
if _VERSION ~= "Lua 5.4" then
  io.stderr:write(arg[0], ": udpxfer needs Lua 5.4, not ", _VERSION, " (run lua5.4, or: make deps)\n")
  os.exit(1)
end
local root = (arg[0]:match("^(.*)/examples/[^/]*$") or ".") .. "/lua/"
package.path = root .. "?.lua;" .. root .. "?/init.lua;" .. package.path
package.cpath = root .. "?.so;" .. package.cpath
local udpxfer = require "udpxfer"

local args, delete = {}, false
for _, a in ipairs(arg) do
  if a == "--delete" then delete = true else args[#args + 1] = a end
end
local remote, dir = args[1], args[2]
if not remote or not dir then
  io.stderr:write("usage: lua examples/sync.lua [--delete] REMOTE DIR [ADDRESS...]\n")
  os.exit(2)
end
local targets = { table.unpack(args, 3) }
if #targets == 0 then targets = { "127.255.255.255" } end

local s, err = udpxfer.sync {
  remote = remote, dir = dir, delete = delete, broadcast = targets,
  on_file = function(ev)
    if ev.action == "error" or ev.action == "skip" then
      io.stderr:write(("%s %s: %s\n"):format(ev.action, ev.path, ev.message or ""))
    end
  end,
}
if not s then
  io.stderr:write("sync: ", err, "\n")
  os.exit(1)
end
local res, msg = s:run()
s:close()
if not res then
  io.stderr:write(("sync %s -> %s failed: %s\n"):format(remote, dir, msg))
  os.exit(1)
end
print(("synced %s -> %s: %d files, %d changed, %d deleted, %d bytes fetched, %d reused, %.2f s"):format(
  remote, dir, res.files, res.changed, res.deleted, res.bytes_fetched, res.bytes_reused, res.elapsed))
