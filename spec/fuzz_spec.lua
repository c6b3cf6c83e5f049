-- Bounded fuzz runs under ASan and UBSan, seeded from csrc/fuzz/corpus:
-- every parser one datagram at a time (fuzz_wire), and each engine fed a
-- sequence of datagrams after a valid offer, cookie or handshake (client,
-- server, stream). `make fuzz` runs longer, with libFuzzer where clang has it.
local H = require "spec.helper"

describe("fuzz smoke", function()
  for _, case in ipairs {
    { "fuzz_wire", 100000, "every parser survives 100000 mutated datagrams" },
    { "fuzz_client", 50000, "the client in a transfer survives 50000 mutated datagram sequences" },
    { "fuzz_server", 50000, "the server with a validated client survives 50000 mutated datagram sequences" },
    { "fuzz_stream", 50000, "a connected stream pair survives 50000 mutated datagram sequences" },
  } do
    local target, runs, name = case[1], case[2], case[3]
    it(name .. " under ASan and UBSan", function()
      local code, out, err = H.run(("make -s build/smoke_%s && ./build/smoke_%s -runs=%d csrc/fuzz/corpus/%s")
        :format(target, target, runs, target))
      assert.are.equal(0, code, (out or "") .. (err or ""))
      assert.matches(("smoke_%s: %d inputs, no crash %%(%%d+ seeds%%)"):format(target, runs), out)
    end)
  end
end)
