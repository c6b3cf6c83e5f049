-- The client's output sink (csrc/host/sink.c) driven from C with its hash thread
-- held at a gate, so the order of events is forced (csrc/test/sink_test.c).
local H = require "spec.helper"

-- Runs build/sink_test once; its output, one "ok: ..." or "FAILED: ..." line per check.
local function sink_test()
  local dir = H.tmpdir()
  local code, out, err = H.run("make -s build/sink_test && ./build/sink_test " .. dir)
  H.rmrf(dir)
  assert.are.equal(0, code, (out or "") .. (err or ""))
  assert.not_matches("FAILED", out)
  return out
end

-- Every line of LINES is in OUT.
local function has_lines(out, lines)
  for _, line in ipairs(lines) do assert.matches(line, out, 1, true) end
end

describe("sink", function()
  it("waits for a slow hash thread rather than evicting a slab still being filled", function()
    has_lines(sink_test(), {
      "ok: the write waits for the hash thread instead",
      "ok: the file commits",
    })
  end)

  it("never makes the receive side wait: a chunk it cannot take yet is refused untouched, and its descriptor says when to try again", function()
    has_lines(sink_test(), {
      "ok: a chunk needing a slab the thread holds is refused, untouched, without waiting",
      "ok: the sink's descriptor is not readable meanwhile",
      "ok: it turns readable when the thread frees a slab",
      "ok: then the chunk is taken",
      "ok: and the file commits with the right SHA-256",
    })
  end)

  it("commits on its thread: the caller gets a descriptor, and only a verified file takes the final name", function()
    has_lines(sink_test(), {
      "ok: the commit is under way when ux_sink_commit_start returns",
      "ok: its descriptor is not readable while it runs",
      "ok: the final name is not there while it runs",
      "ok: the file holds the bytes under its final name",
      "ok: a wrong SHA-256 ends in EBADMSG",
      "ok: and the final name never appears",
    })
  end)

  it("leaves blocks of zeros as holes, punched where other bytes were written before", function()
    has_lines(sink_test(), {
      "ok: a file with holes commits with the right SHA-256",
      "ok: its bytes are right, zeros and all",
      "ok: it takes the blocks of its data only",
      "ok: a region is written out before its zeros arrive",
      "ok: the zeros read back as zeros where other bytes were",
      "ok: and take no blocks",
    })
  end)

  it("keeps the slabs queued for its thread when cut short: they are written before the file is closed", function()
    has_lines(sink_test(), { "ok: a kept partial file holds the slabs queued for the hash thread" })
  end)
end)
