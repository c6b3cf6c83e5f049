-- One loopback transfer under valgrind (tools/valgrind.sh, `make valgrind`):
-- no memory errors, nothing definitely lost.
local H = require "spec.helper"

describe("valgrind", function()
  if H.run("command -v valgrind >/dev/null") ~= 0 then
    it("needs valgrind (apt-get install valgrind)", function() pending("valgrind is not installed") end)
    return
  end
  it("sees a loopback transfer with no memory errors and nothing definitely lost", function()
    local code, out, err = H.run("sh tools/valgrind.sh")
    assert.are.equal(0, code, err)
    assert.matches("valgrind transfer: identical", out)
    assert.is_nil(err:match("definitely lost"), err)
    assert.is_nil(err:match("Invalid read") or err:match("Invalid write") or err:match("uninitialised"), err)
  end)
end)
