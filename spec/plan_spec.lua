-- What a sync must do (udpxfer.plan): pure, so every case is a table in,
-- a plan out; no folder, no socket.
require "spec.helper"
local plan = require "udpxfer.plan"
local glob = require "udpxfer.glob"
local index = require "udpxfer.index"

local A, B, C = ("aa"):rep(32), ("bb"):rep(32), ("cc"):rep(32)

local function dir(path, mode) return { path = path, type = "dir", mode = mode or 493, mtime = 10 } end
local function file(path, sha, size, mtime) return { path = path, type = "file", mode = 420, mtime = mtime or 20, size = size or 3, sha256 = sha } end
local function link(path, target) return { path = path, type = "link", mode = 511, mtime = 30, target = target } end

-- A local stat like dir:scan()'s.
local function st(type, size, mtime, ino, extra)
  local t = { type = type, mode = type == "dir" and 493 or 420, size = size or 3, mtime = mtime or 20, ino = ino or 1,
    ctime = 5 }
  for k, v in pairs(extra or {}) do t[k] = v end
  if t.type == "file" then t.stamp = index.stamp(t.size, t.mtime, t.ino, t.ctime) end
  return t
end

-- Entries as core.listing_decode gives them: in listing order, with find(path).
local function listing(entries)
  return setmetatable(entries, { __index = { find = function(l, path)
    for i, e in ipairs(l) do if e.path == path then return i end end
  end } })
end

local function make(entries, locals, idx, opts)
  opts = opts or {}
  local excluded = glob.matcher(opts.exclude)
  return plan.make(plan.select(listing(entries), excluded), locals or {}, idx or {},
    { delete = opts.delete, excluded = excluded })
end

local function paths(steps)
  local t = {}
  for _, s in ipairs(steps) do t[#t + 1] = s.e and s.e.path or s.path end
  table.sort(t)
  return t
end

describe("plan", function()
  it("makes folders, links, empty files and fetches into an empty folder, the root apart", function()
    local p = make { dir("."), dir("d"), file("d/f", A), file("e", C, 0), link("l", "d/f") }
    assert.are.equal(".", p.root.path)
    assert.are.same({ "d" }, paths(p.dirs))
    assert.are.same({ "d/f" }, paths(p.fetches))
    assert.are.same({ "e" }, paths(p.empty))
    assert.are.same({ "l" }, paths(p.symlinks))
    assert.are.equal(2, p.files)
  end)

  it("leaves a file alone that the index vouches for, and only sets mode or time where they differ", function()
    local idx = { same = index.record(st("file"), A), moved = index.record(st("file", 3, 20, 2), B) }
    local locals = { same = st("file"), moved = st("file", 3, 20, 2) }
    local p = make({ dir("."), file("same", A), file("moved", B, 3, 99) }, locals, idx)
    assert.are.equal(1, p.unchanged)
    assert.are.same({ "moved" }, paths(p.meta))
    assert.are.same({}, paths(p.fetches))
  end)

  it("fetches a changed file against its old copy, and copies content the folder has elsewhere", function()
    local idx = { old = index.record(st("file"), A), other = index.record(st("file", 3, 20, 3), C) }
    local locals = { old = st("file"), other = st("file", 3, 20, 3) }
    local p = make({ dir("."), file("old", B), file("new", C), file("other", C) }, locals, idx)
    assert.are.equal("old", p.fetches[1].basis)
    assert.are.same({ "old" }, paths(p.fetches))
    assert.are.same({ { "new", "other" } }, { { p.copies[1].e.path, p.copies[1].from } })
  end)

  it("does not trust the index for a file whose stat changed since", function()
    local idx = { f = index.record(st("file"), A) }
    local p = make({ dir("."), file("f", A) }, { f = st("file", 3, 20, 1, { ctime = 6 }) }, idx)
    assert.are.same({ "f" }, paths(p.fetches))
  end)

  it("names the files to hash first: the listed size and mtime, unknown to the index", function()
    local entries = { dir("."), file("a", A), file("b", B), file("c", C, 4), file("x.log", A) }
    local locals = { a = st("file"), b = st("file", 3, 20, 2), c = st("file"), ["x.log"] = st("file", 3, 20, 4) }
    local idx = { b = index.record(locals.b, B) }
    local p = make(entries, locals, idx, { exclude = { "*.log" } })
    assert.are.same({ "a" }, paths(p.checks)) -- b vouched for, c another size, x.log excluded
    assert.are.same({ "a", "c" }, paths(p.fetches)) -- until a hash says otherwise
  end)

  it("reports a folder where a file goes, and a file where a folder goes, as conflicts", function()
    local locals = { f = st("dir"), d = st("file"), l = st("dir") }
    local p = make({ dir("."), file("f", A), dir("d"), link("l", "f") }, locals)
    assert.are.same({ "d", "f", "l" }, paths(p.conflicts))
    assert.are.same({ "f" }, paths(p.fetches))
    assert.are.same({ "d" }, paths(p.dirs))
  end)

  it("deletes, with delete, what the listing lacks, deepest first, and keeps excluded entries", function()
    local locals = { keep = st("file"), gone = st("dir"), ["gone/x"] = st("file"), ["gone/y.log"] = st("file"),
      ["z.log"] = st("file") }
    local p = make({ dir("."), file("keep", A) }, locals, {}, { delete = true, exclude = { "*.log" } })
    assert.are.same({ "gone/x", "gone" }, { p.deletes[1].path, p.deletes[2].path })
    assert.are.equal(2, #p.deletes)
    assert.are.same({}, make({ dir(".") }, locals).deletes)
  end)

  it("leaves out excluded entries and everything below an excluded folder", function()
    local p = make({ dir("."), dir("cache"), file("cache/a", A), file("b.tmp", B), file("keep", C) }, {}, {},
      { exclude = { "cache/", "*.tmp" } })
    assert.are.same({ "keep" }, paths(p.fetches))
    assert.are.same({}, paths(p.dirs))
    assert.is_nil(p.listed["cache/a"])
  end)

  it("skips links that lead out of the tree and entries named as udpxfer's own files", function()
    local p = make { dir("."), link("up", "../x"), link("abs", "/etc/passwd"), file(".f.udpxfer-0123abcd", A),
      link("in", "a/b") }
    assert.are.same({ "abs", "up" }, paths(p.unsafe))
    assert.are.same({ ".f.udpxfer-0123abcd" }, paths(p.own))
    assert.are.same({ "in" }, paths(p.symlinks))
  end)

  it("keeps a link whose '..' parts come first and stay in the tree", function()
    for target, ok in pairs { ["a"] = true, ["../b"] = false, ["./a/./b"] = true, ["a/../b"] = false, [""] = false } do
      assert.are.equal(ok, plan.safe_link("x", target), target)
    end
    assert.is_true(plan.safe_link("d/e/x", "../../f"))
    assert.is_false(plan.safe_link("d/e/x", "../../../f"))
  end)
end)
