-- The examples run as documented: `lua5.4 examples/serve.lua DIR PORT` and
-- `lua5.4 examples/get.lua NAME PORT 127.0.0.1`, from any directory.
local H = require "spec.helper"

describe("examples", function()
  it("serve.lua and get.lua move a file over loopback", function()
    local dir = H.tmpdir()
    finally(function() H.rmrf(dir) end)
    os.execute("mkdir -p " .. dir .. "/data " .. dir .. "/here")
    H.write(dir .. "/data/e.txt", "example payload\n")
    local root = H.sh("pwd"):gsub("%s+$", "")
    local pid, p = H.spawn(("lua5.4 %s/examples/serve.lua %s 0"):format(root, dir .. "/data"))
    finally(function() H.kill(pid) p:close() end)
    local port = tonumber(p:read("l"):match("port (%d+)"))
    local code, out = H.run(("cd %s && lua5.4 %s/examples/get.lua e.txt %d 127.0.0.1"):format(dir .. "/here", root, port))
    assert.are.equal(0, code)
    assert.matches("^%./e%.txt\t" .. H.core.sha256("example payload\n"), out)
    assert.are.equal("example payload\n", H.read(dir .. "/here/e.txt"))
  end)
end)
