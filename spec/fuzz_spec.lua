-- A bounded fuzz run of every parser (wire decoder, names, addresses, both
-- engines' input paths) under ASan/UBSan. `make fuzz` runs longer, with
-- libFuzzer where clang has it.
local H = require "spec.helper"

describe("fuzz smoke", function()
  it("survives 100000 mutated datagrams under ASan and UBSan", function()
    local code, out, err = H.run("make -s build/fuzz_smoke && ./build/fuzz_smoke -runs=100000")
    assert.are.equal(0, code, (out or "") .. (err or ""))
    assert.matches("100000 inputs, no crash", out)
  end)
end)
