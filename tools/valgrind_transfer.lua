-- One loopback transfer in one process, for valgrind (tools/valgrind.sh):
-- a server and a fetch of a 3 MiB file, checked, then everything closed.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "lua/?.so;" .. package.cpath
local udpxfer = require "udpxfer"

local dir = assert(io.popen("mktemp -d /tmp/udpxfer-vg.XXXXXX")):read("l")
os.execute(("mkdir -p %s/srv %s/out && head -c 3145733 /dev/urandom > %s/srv/f.bin"):format(dir, dir, dir))
local srv = assert(udpxfer.serve { dir = dir .. "/srv", port = 0 })
local g = assert(udpxfer.get { name = "f.bin", out = dir .. "/out", servers = { "127.0.0.1:" .. srv:port() },
  broadcast = false, timeout = 30, idle_timeout = 30 })
local deadline = udpxfer.core.now() + 120
while not g:step() and udpxfer.core.now() < deadline do
  srv:step()
  udpxfer.core.poll({ g:pollfd(), g:events(), srv:pollfd(), srv:events() }, math.min(g:timeout() or 0.05, 0.05))
end
local res, err = g:result()
local same = res and udpxfer.core.sha256_file(dir .. "/srv/f.bin") == res.sha256
  and udpxfer.core.sha256_file(dir .. "/out/f.bin") == res.sha256
g:close()
srv:close()
os.execute("rm -rf " .. dir)
print(same and "valgrind transfer: identical" or ("valgrind transfer failed: " .. tostring(err)))
os.exit(same and 0 or 1, true)
