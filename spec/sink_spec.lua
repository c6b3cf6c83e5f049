-- The client's output sink (csrc/sink.c) driven from C with its hash thread
-- held at a gate, so the order of events is forced (csrc/test/sink_test.c).
local H = require "spec.helper"

describe("sink", function()
  it("issue 4 regression: waits for a slow hash thread rather than evicting a slab still being filled", function()
    local dir = H.tmpdir()
    local code, out, err = H.run("make -s build/sink_test && ./build/sink_test " .. dir)
    H.rmrf(dir)
    assert.are.equal(0, code, (out or "") .. (err or ""))
    assert.not_matches("FAILED", out)
    assert.matches("ok: the file commits", out)
  end)
end)
