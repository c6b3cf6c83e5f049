-- The examples run as documented, from any directory, with plain `lua`
-- (make deps makes it Lua 5.4): `lua examples/serve.lua DIR PORT`, `lua
-- examples/get.lua NAME PORT 127.0.0.1`, `lua examples/sync.lua [--delete]
-- REMOTE DIR ADDRESS`.
local H = require "spec.helper"

describe("examples", function()
  it("serve.lua and get.lua move a file over loopback", function()
    local later = H.cleanups(finally)
    local dir = H.tmpdir()
    later(function() H.rmrf(dir) end)
    os.execute("mkdir -p " .. dir .. "/data " .. dir .. "/here")
    H.write(dir .. "/data/e.txt", "example payload\n")
    local root = H.sh("pwd"):gsub("%s+$", "")
    local pid, p = H.spawn(("lua5.4 %s/examples/serve.lua %s 0"):format(root, dir .. "/data"))
    later(function() H.kill(pid) p:close() end)
    local port = tonumber(p:read("l"):match("port (%d+)"))
    local code, out = H.run(("cd %s && lua %s/examples/get.lua e.txt %d 127.0.0.1"):format(dir .. "/here", root, port))
    assert.are.equal(0, code)
    assert.matches("^%./e%.txt\t" .. H.core.sha256("example payload\n"), out)
    assert.are.equal("example payload\n", H.read(dir .. "/here/e.txt"))
  end)

  it("sync.lua keeps a folder in step, as cron would run it: a summary line, exit 0, then nothing to move", function()
    local later = H.cleanups(finally)
    local dir = H.tmpdir()
    later(function() H.rmrf(dir) end)
    os.execute("mkdir -p " .. dir .. "/data/sub " .. dir .. "/mirror")
    H.write(dir .. "/data/a.txt", "alpha\n")
    H.write(dir .. "/data/sub/b.txt", "beta\n")
    H.write(dir .. "/mirror/stale.txt", "gone after --delete\n")
    local root = H.sh("pwd"):gsub("%s+$", "")
    local spid, sp = H.spawn(("lua5.4 %s/examples/serve.lua %s 0"):format(root, dir .. "/data"))
    later(function() H.kill(spid) sp:close() end)
    local port = tonumber(sp:read("l"):match("port (%d+)"))
    local cmd = ("cd / && lua %s/examples/sync.lua --delete . %s 127.0.0.1:%d"):format(root, dir .. "/mirror", port)
    local code, out, err = H.run(cmd)
    assert.are.equal(0, code, err)
    assert.matches("^synced %. %-> .*mirror: 2 files, %d+ changed, 1 deleted, 11 bytes fetched, 0 reused, [%d.]+ s\n$", out)
    assert.are.equal("beta\n", H.read(dir .. "/mirror/sub/b.txt"))
    assert.is_nil(H.read(dir .. "/mirror/stale.txt"))
    code, out = H.run(cmd)
    assert.are.equal(0, code)
    assert.matches("2 files, 0 changed, 0 deleted, 0 bytes fetched", out)
    code, _, err = H.run(("lua5.4 %s/examples/sync.lua . %s/no-such-dir 127.0.0.1:%d"):format(root, dir, port))
    assert.are.equal(1, code)
    assert.matches("no%-such%-dir", err)
  end)

  it("say in one line, under another Lua, that they and the module need Lua 5.4", function()
    local other = H.sh("command -v lua5.1 lua5.3 | head -n 1"):gsub("%s+$", "")
    if other == "" then return pending("no Lua but 5.4 is installed") end
    local root = H.sh("pwd"):gsub("%s+$", "")
    for _, ex in ipairs { "get", "serve", "sync", "cqueues", "luv" } do
      local code, out, err = H.run(("cd / && %s %s/examples/%s.lua x"):format(other, root, ex))
      assert.are.equal(1, code)
      assert.are.equal("", out)
      assert.matches("^[^\n]*examples/" .. ex .. "%.lua: udpxfer needs Lua 5%.4, not Lua 5%.%d[^\n]*\n$", err)
    end
    local _, _, err = H.run(other .. [[ -e 'package.path = "lua/?.lua;lua/?/init.lua;" .. package.path; require "udpxfer"']])
    assert.matches("udpxfer needs Lua 5%.4, not Lua 5%.%d: run lua5%.4", err)
  end)

  -- The README's snippet for LOOP, applied to a server and a fetch of
  -- its file: the fetch must end, done, within the bound.
  local function readme_snippet(loop)
    local block = H.read("README.md"):match("```lua\n(%-%- cqueues:.-)```")
    return assert(block:match("(%-%- " .. loop .. ":.-)\n%-%- ") or block:match("(%-%- " .. loop .. ":.*)"))
  end
  local RUN = {
    cqueues = "local cqueues = require 'cqueues'\nlocal cq = cqueues.new()\n%s\ndrive(srv)\ndrive(g)\n"
      .. "while not g.outcome and os.time() < deadline do assert(cq:step(1)) end\n",
    luv = "local uv = require 'luv'\n%s\ndrive(srv)\ndrive(g)\n"
      .. "while not g.outcome and os.time() < deadline do uv.run('once') end\n",
  }

  for _, loop in ipairs { "cqueues", "luv" } do
    it(("the README's %s snippet drives a server and a fetch in one loop to the end"):format(loop), function()
      if not pcall(require, loop) then return pending(loop .. " is not installed (apt-get install lua-" .. loop .. ")") end
      local dir = H.tmpdir()
      finally(function() H.rmrf(dir) end)
      os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
      H.write(dir .. "/srv/f", ("x"):rep(100000))
      local drive = "local function drive(g)\n" .. readme_snippet(loop) .. "\nend\n"
      H.write(dir .. "/run.lua", ([[
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = "lua/?.so;" .. package.cpath
local udpxfer = require "udpxfer"
local srv = assert(udpxfer.serve { dir = %q, port = 0 })
local g = assert(udpxfer.get { name = "f", out = %q, servers = { "127.0.0.1:" .. srv:port() }, broadcast = false })
local deadline = os.time() + 20
]]):format(dir .. "/srv", dir .. "/out") .. RUN[loop]:format(drive) .. "print(g.outcome and g.outcome.type)\n")
      local code, out, err = H.run("timeout 30 lua5.4 " .. dir .. "/run.lua")
      assert.are.equal(0, code, err)
      assert.are.equal("done\n", out)
      assert.are.equal(("x"):rep(100000), H.read(dir .. "/out/f"))
    end)
  end

  for _, loop in ipairs { "cqueues", "luv" } do
    local have = pcall(require, loop)
    it(("%s.lua serves and fetches inside one %s loop, as a drop-in"):format(loop, loop), function()
      if not have then return pending(loop .. " is not installed (apt-get install lua-" .. loop .. ")") end
      local root = H.sh("pwd"):gsub("%s+$", "")
      local code, out, err = H.run(("cd / && lua5.4 %s/examples/%s.lua %d"):format(root, loop, 16 * 1024 * 1024))
      assert.are.equal(0, code, err)
      assert.matches(("^%s: fetched 16777216 bytes in [%%d.]+ s: identical\n$"):format(loop), out)
    end)
  end
end)
