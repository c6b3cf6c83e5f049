-- lua examples/luv.lua [SIZE]
-- A server and a fetch driven by one libuv loop (luv): one uv_poll handle
-- per object on its pollfd() (the same descriptor for the object's life)
-- and one timer for its timeout(). Serves a temporary folder, fetches its
-- file over loopback, checks it, exits 0.
if _VERSION ~= "Lua 5.4" then
  io.stderr:write(arg[0], ": udpxfer needs Lua 5.4, not ", _VERSION, " (run lua5.4, or: make deps)\n")
  os.exit(1)
end
local root = (arg[0]:match("^(.*)/examples/[^/]*$") or ".") .. "/lua/"
package.path = root .. "?.lua;" .. root .. "?/init.lua;" .. package.path
package.cpath = root .. "?.so;" .. package.cpath
local uv = require "luv"
local udpxfer = require "udpxfer"

local size = tonumber(arg[1]) or 8 * 1024 * 1024
local dir = assert(io.popen("mktemp -d /tmp/udpxfer-uv.XXXXXX")):read("l")
os.execute(("mkdir -p %s/srv %s/out && head -c %d /dev/urandom > %s/srv/f.bin"):format(dir, dir, size, dir))

-- Drive OBJ from the loop: step when its descriptor is ready or its
-- timeout passes; DONE() once step() says it has finished.
local function drive(obj, done)
  local poll, timer = uv.new_poll(obj:pollfd()), uv.new_timer()
  local function stop()
    poll:stop()
    poll:close()
    timer:stop()
    timer:close()
  end
  local function again()
    if obj:step() then
      stop()
      return done()
    end
    local t = obj:timeout()
    timer:stop()
    if t then timer:start(math.ceil(t * 1000), 0, again) end
  end
  poll:start(obj:events(), again)
  again()
  return stop
end

local srv = assert(udpxfer.serve { dir = dir .. "/srv", port = 0 })
local stop_server = drive(srv, function() end)
local g = assert(udpxfer.get { name = "f.bin", out = dir .. "/out", servers = { "127.0.0.1:" .. srv:port() },
  broadcast = false })
local t0, t1 = uv.hrtime(), nil
local ok = false
drive(g, function()
  t1 = uv.hrtime()
  local res, err = g:result()
  g:close()
  ok = res and res.sha256 == udpxfer.core.sha256_file(dir .. "/srv/f.bin")
    and udpxfer.core.sha256_file(dir .. "/out/f.bin") == res.sha256
  if not ok then io.stderr:write("luv fetch failed: ", tostring(err), "\n") end
  stop_server()
  srv:close()
end)
uv.run()
os.execute("rm -rf " .. dir)
print(("luv: fetched %d bytes in %.3f s: %s"):format(size, (t1 - t0) / 1e9, ok and "identical" or "DIFFERENT"))
os.exit(ok and 0 or 1)
