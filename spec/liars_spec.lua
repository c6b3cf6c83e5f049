-- Which servers a fetch leaves out after its whole file failed the SHA-256
-- check (lua/udpxfer/liars.lua): pure bookkeeping, no sockets.
local liars = require "udpxfer.liars"

local function stat(server, bytes, active)
  return { server = server, bytes = bytes, active = active ~= false }
end

-- Plays attempts against a set of liars: each attempt's sources are the
-- servers not excluded; it fails while a liar is among them.
local function play(servers, liar_set, max)
  local t = liars.new(max)
  local attempts = 0
  while true do
    attempts = attempts + 1
    local excluded, stats, failed = {}, {}, false
    for _, s in ipairs(t:excluded()) do excluded[s] = true end
    for i, s in ipairs(servers) do
      local in_use = not excluded[s]
      stats[#stats + 1] = stat(s, in_use and 1000 * i or 0, in_use)
      failed = failed or (in_use and liar_set[s])
    end
    if not failed then return true, attempts, t:excluded() end
    if not t:failed(stats) then return false, attempts, t:excluded() end
  end
end

describe("liars", function()
  it("leaves out the biggest source first and nothing when no attempt failed", function()
    local t = liars.new()
    assert.are.same({}, t:excluded())
    assert.are.equal("b", t:failed { stat("a", 10), stat("b", 30), stat("c", 20) })
    assert.are.same({ "b" }, t:excluded())
    assert.are.equal(2, t.attempts)
  end)

  it("finds one liar among two servers, whichever it is, in at most three attempts", function()
    for _, liar in ipairs { "a", "b" } do
      local ok, attempts, excluded = play({ "a", "b" }, { [liar] = true })
      assert.is_true(ok, liar)
      assert.is_true(attempts <= 3, liar .. ": " .. attempts)
      assert.are.same({ liar }, excluded)
    end
  end)

  it("finds one liar among four servers, leaving honest ones in", function()
    for _, liar in ipairs { "a", "b", "c", "d" } do
      local ok, attempts, excluded = play({ "a", "b", "c", "d" }, { [liar] = true })
      assert.is_true(ok, liar)
      assert.is_true(attempts <= 8, liar .. ": " .. attempts)
      local found = false
      for _, s in ipairs(excluded) do found = found or s == liar end
      assert.is_true(found, liar .. " left out")
    end
  end)

  it("finds two liars among three servers", function()
    local ok, _, excluded = play({ "a", "b", "c" }, { a = true, c = true })
    assert.is_true(ok)
    assert.are.same({ "a", "c" }, excluded)
  end)

  it("proves a single source wrong and clears the suspicions, which may have hit honest servers", function()
    local t = liars.new()
    assert.are.equal("b", t:failed { stat("a", 10), stat("b", 30) }) -- b is honest, a lies
    assert.are.equal("a", t:failed { stat("a", 40), stat("b", 0, false) })
    assert.are.same({ "a" }, t:excluded())
  end)

  it("gives up when every server is wrong, when one served alone, and after max_attempts", function()
    local ok, attempts = play({ "a", "b" }, { a = true, b = true })
    assert.is_false(ok)
    assert.is_true(attempts <= 4)
    assert.is_nil(liars.new():failed { stat("a", 100) }, "nobody else to ask")
    assert.is_nil(liars.new():failed { stat("a", 0), stat("b", 0) }, "no source: nothing to suspect")
    local t = liars.new(2)
    assert.is_not_nil(t:failed { stat("a", 1), stat("b", 2), stat("c", 3) })
    assert.is_nil(t:failed { stat("a", 1), stat("b", 2) })
  end)
end)
