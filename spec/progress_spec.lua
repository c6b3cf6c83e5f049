require "spec.helper"
local progress = require "udpxfer.progress"

describe("progress", function()
  it("formats sizes", function()
    assert.are.equal("512 B", progress.bytes(512))
    assert.are.equal("1.5 KiB", progress.bytes(1536))
    assert.are.equal("20.0 MiB", progress.bytes(20 * 1024 * 1024))
  end)
  it("formats durations", function()
    assert.are.equal("0:05", progress.duration(5))
    assert.are.equal("1:01:01", progress.duration(3661))
    assert.are.equal("--:--", progress.duration(math.huge))
  end)
  it("draws a bar with bytes, rate and ETA", function()
    local line = progress.line("f", { size = 1000, bytes = 500, elapsed = 1, servers = { { active = true } } }, 10)
    assert.are.equal("f  50% [#####     ] 500 B / 1000 B  500 B/s  ETA 0:01  1 server", line)
  end)
end)
