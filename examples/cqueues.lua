-- lua examples/cqueues.lua [SIZE]
-- A server and a fetch, each in a coroutine of one cqueues loop: serves a
-- temporary folder, fetches its file over loopback, checks it, exits 0.
-- cqueues.poll(obj) takes a udpxfer object as it is (pollfd, events,
-- timeout): no other glue.
if _VERSION ~= "Lua 5.4" then
  io.stderr:write(arg[0], ": udpxfer needs Lua 5.4, not ", _VERSION, " (run lua5.4, or: make deps)\n")
  os.exit(1)
end
local root = (arg[0]:match("^(.*)/examples/[^/]*$") or ".") .. "/lua/"
package.path = root .. "?.lua;" .. root .. "?/init.lua;" .. package.path
package.cpath = root .. "?.so;" .. package.cpath
local cqueues = require "cqueues"
local condition = require "cqueues.condition"
local udpxfer = require "udpxfer"

local size = tonumber(arg[1]) or 8 * 1024 * 1024
local dir = assert(io.popen("mktemp -d /tmp/udpxfer-cq.XXXXXX")):read("l")
os.execute(("mkdir -p %s/srv %s/out && head -c %d /dev/urandom > %s/srv/f.bin"):format(dir, dir, size, dir))

local srv = assert(udpxfer.serve { dir = dir .. "/srv", port = 0 })
local done = condition.new()
local finished = false
local cq = cqueues.new()

cq:wrap(function() -- the server, until the fetch says it is done
  while not finished do
    srv:step()
    cqueues.poll(srv, done)
  end
  srv:close()
end)

local ok, t0, t1 = false, nil, nil
cq:wrap(function() -- the fetch
  local g = assert(udpxfer.get { name = "f.bin", out = dir .. "/out", servers = { "127.0.0.1:" .. srv:port() },
    broadcast = false })
  t0 = cqueues.monotime()
  while not g:step() do cqueues.poll(g) end
  t1 = cqueues.monotime()
  local res, err = g:result()
  g:close()
  ok = res and res.sha256 == udpxfer.core.sha256_file(dir .. "/srv/f.bin")
    and udpxfer.core.sha256_file(dir .. "/out/f.bin") == res.sha256
  if not ok then io.stderr:write("cqueues fetch failed: ", tostring(err), "\n") end
  finished = true
  done:signal()
end)

local good, err = cq:loop()
os.execute("rm -rf " .. dir)
if not good then
  io.stderr:write("cqueues loop failed: ", tostring(err), "\n")
  os.exit(1)
end
print(("cqueues: fetched %d bytes in %.3f s: %s"):format(size, t1 - t0, ok and "identical" or "DIFFERENT"))
os.exit(ok and 0 or 1)
