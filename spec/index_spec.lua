-- The local index of a synced folder (udpxfer.index).
local H = require "spec.helper"
local index = require "udpxfer.index"

describe("index", function()
  local dir, d

  before_each(function()
    dir = H.tmpdir()
    d = assert(H.core.dir(dir))
  end)
  after_each(function()
    d:close()
    H.rmrf(dir)
  end)

  local SHA = ("ab"):rep(32)
  local function stat(size, mtime, ino, ctime)
    return { type = "file", size = size, mtime = mtime, ino = ino, ctime = ctime,
      stamp = index.stamp(size, mtime, ino, ctime) }
  end
  local st = stat(5, 1700000000123456789, 42, 1700000001000000000)

  it("stamps a file as the folder's stat and scan do", function()
    H.write(dir .. "/f", "hello")
    assert(d:mkdir("sub", 493))
    local s = assert(d:stat("f"))
    assert.equal(index.stamp(5, s.mtime, s.ino, s.ctime), s.stamp)
    local scan = assert(d:scan())
    assert.equal(s.stamp, scan:map()["f"].stamp)
    assert.is_nil(scan:map()["sub"].stamp) -- a folder has none
    assert.is_nil(assert(d:stat("sub")).stamp)
  end)

  it("builds a file's record from its stat and hash", function()
    local r = index.record(st, SHA)
    assert.equal(SHA, index.sha256(r))
    assert.is_true(index.current(r, st))
  end)

  it("vouches for a file only while its size, mtime, inode and ctime are the recorded ones", function()
    local r = index.record(st, SHA)
    assert.is_true(index.current(r, st))
    for i = 1, 4 do
      local v = { 5, st.mtime, 42, st.ctime }
      v[i] = v[i] + 1
      assert.is_false(index.current(r, stat(v[1], v[2], v[3], v[4])), i)
    end
    assert.is_false(index.current(r, { type = "dir", size = 5, mtime = st.mtime, ino = 42, ctime = st.ctime }))
    assert.is_false(index.current(nil, st))
    assert.is_false(index.current(r, nil))
  end)

  it("saves and loads records and listings as they were, names with any bytes included", function()
    local t = { ["a"] = index.record(st, SHA), ["sub/ü n\ti"] = index.record(st, ("0f"):rep(32)) }
    local listings = { ["."] = "udpxfer-listing 1\nd\t493\t0\t.\n", docs = ("x"):rep(100000) }
    assert.is_true(index.save(d, t, listings))
    local t2, l2 = index.load(d)
    assert.are.same(t, t2)
    assert.are.same(listings, l2)
  end)

  it("is empty when missing, truncated, damaged or of another format: never an error", function()
    assert.are.same({ {}, {} }, { index.load(d) })
    assert.is_true(index.save(d, { a = index.record(st, SHA) }, { ["."] = "L" }))
    local whole = H.read(dir .. "/" .. index.NAME)
    for _, bad in ipairs { whole:sub(1, #whole - 3), whole .. "z", "udpxfer-index 1\n", "" } do
      H.write(dir .. "/" .. index.NAME, bad)
      assert.are.same({ {}, {} }, { index.load(d) })
    end
  end)
end)
