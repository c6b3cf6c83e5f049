require "spec.helper"
local progress = require "udpxfer.progress"

describe("progress", function()
  it("formats sizes", function()
    assert.are.equal("512 B", progress.bytes(512))
    assert.are.equal("1.5 KiB", progress.bytes(1536))
    assert.are.equal("20.0 MiB", progress.bytes(20 * 1024 * 1024))
  end)
  it("formats a rate under 1 KiB/s (a fraction of a byte), as `send` prints for one slow byte", function()
    assert.are.equal("0 B", progress.bytes(1 / 1.2))
    assert.are.equal("999 B", progress.bytes(999.9))
  end)
  it("formats durations", function()
    assert.are.equal("0:05", progress.duration(5))
    assert.are.equal("1:01:01", progress.duration(3661))
    assert.are.equal("--:--", progress.duration(math.huge))
  end)
  it("draws a bar with bytes, rate and ETA", function()
    local st = { size = 1000, bytes = 500, elapsed = 1, servers = { { active = true } } }
    assert.are.equal("f [############            ]  50%  500 B / 1000 B  500 B/s  ETA 0:01  1 server",
      progress.line("f", st, 100))
  end)

  it("fits the terminal: the bar shrinks, then the name is cut from its start, never a wrap", function()
    local st = { size = 1000, bytes = 500, elapsed = 1, servers = { { active = true } } }
    for _, w in ipairs { 120, 80, 60, 40, 20 } do
      local line = progress.line(("long/name/"):rep(10) .. "file.bin", st, w)
      assert.is_true(#line <= w - 1, ("%d columns: %q"):format(w, line))
    end
    local narrow = progress.line(("long/name/"):rep(10) .. "file.bin", st, 70)
    assert.matches("^%.%..*file%.bin  50%% ", narrow)
  end)

  it("drops whole fields on a narrow terminal, the least useful first: the ETA stays at 40 columns", function()
    local st = { size = 3 * 1024 ^ 3, bytes = 1024 ^ 3, elapsed = 10, servers = { { active = true } } }
    local line = progress.line("some/folder/movie.mkv", st, 40)
    assert.matches("  33%%  [%d.]+ MiB/s  ETA 0:20$", line)
    assert.is_true(#line <= 39)
    line = progress.sync_line(".", { files_done = 3, files_todo = 10, bytes_done = 1024 ^ 3, bytes_total = 3 * 1024 ^ 3,
      elapsed = 10 }, 40)
    assert.matches("3/10 files  [%d.]+ MiB/s  ETA 0:20$", line)
    for w = 12, 120 do
      local l = progress.line(("long/name/"):rep(10) .. "file.bin", st, w)
      assert.is_true(#l <= w - 1, ("%d columns: %q"):format(w, l))
      assert.matches("%d%%", l) -- the percentage is never cut
    end
  end)

  it("draws a sync's line: files and bytes done and to do, rate, ETA", function()
    local line = progress.sync_line(".", { files_done = 3, files_todo = 10, bytes_done = 512, bytes_total = 1024,
      elapsed = 2 }, 100)
    assert.matches("^%. %[#+ +%] 3/10 files  512 B / 1%.0 KiB  256 B/s  ETA 0:02$", line)
  end)
end)
