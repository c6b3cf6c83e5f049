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

  it("lets a listing tell which files the folder holds as listed, as the index vouches", function()
    local body = { a = "same", b = "mode", c = "unknown", e = "stale", f = "other sha", g = "mtime" }
    for name, text in pairs(body) do H.write(dir .. "/" .. name, text) end
    os.execute("chmod 600 " .. H.shell_quote(dir .. "/b"))
    assert(d:mkdir("sub", 493))
    local idx = {}
    for _, name in ipairs { "a", "b", "e", "f", "g" } do
      idx[name] = index.record(assert(d:stat(name)), H.core.sha256(body[name]))
    end
    idx.e = "x" .. idx.e:sub(2) -- another stamp: the file changed since
    idx.f = index.record(assert(d:stat("f")), H.core.sha256("something else"))
    local lines = {}
    for _, name in ipairs { "a", "b", "c", "e", "f", "g" } do
      local st = assert(d:stat(name))
      local mtime = name == "g" and st.mtime + 1 or st.mtime
      lines[#lines + 1] = ("f\t644\t%d\t%d\t%s\t%s"):format(mtime, #body[name], H.core.sha256(body[name]):upper(), name)
    end
    lines[#lines + 1] = "d\t755\t0\tsub"
    local entries = assert(H.core.listing_decode(H.listing(lines), 100, 0x1ff))
    local got = {}
    local same = entries:unchanged(assert(d:scan()), idx)
    for i = 1, #entries do got[entries[i].path] = same:byte(i) end
    -- only a: b has another mode here, c no record, e another stamp, f another SHA-256,
    -- g another mtime listed; folders are never "unchanged files"
    assert.are.same({ ["."] = 0, a = 1, b = 0, c = 0, e = 0, f = 0, g = 0, sub = 0 }, got)
    assert.is_false(entries:has_own())
    local own = assert(H.core.listing_decode(H.listing { "d\t755\t0\tsub", "f\t644\t0\t1\t" .. H.core.sha256("x")
      .. "\tsub/.udpxfer-index" }, 100, 0x1ff))
    assert.is_true(own:has_own())
  end)

  it("saves and loads records and listings as they were, names with any bytes included", function()
    local t = { ["a"] = index.record(st, SHA), ["sub/ü n\ti"] = index.record(st, ("0f"):rep(32)) }
    local listings = { ["."] = "udpxfer-listing 1\nd\t493\t0\t.\n", docs = ("x"):rep(100000) }
    assert.is_true(index.save(d, t, listings))
    assert.has_error(function() d:write("other", { "a", 5 }) end, "dir:write: piece 2 is not a string")
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
