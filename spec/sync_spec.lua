-- Folder sync over loopback: udpxfer.sync against real servers in this
-- process (and, to be killed, the CLI as a process), and against a
-- hand-written server offering hostile listings.
local H = require "spec.helper"
local udpxfer = H.udpxfer
local core = H.core

local MiB = 1024 * 1024
local q = H.shell_quote

-- The source tree: nested and empty folders, empty files, odd names,
-- modes, old mtimes, links in and out of the tree, 1,000 small files and
-- two large ones.
local function make_tree(src)
  os.execute(("mkdir -p %s/sub/deep/er %s/empty-dir %s/many %s/skipme"):format(q(src), q(src), q(src), q(src)))
  local function put(path, data) H.write(src .. "/" .. path, data) end
  put("a.txt", "alpha\n")
  put("sub/b.txt", "beta\n")
  put("sub/deep/er/c.txt", "gamma\n")
  put("empty", "")
  put("with space.txt", "spaced\n")
  put("-dash", "dash\n")
  put("ünïcödé-ファイル.txt", "unicode\n")
  put("new\nline\tand tab", "odd\n")
  put("100%.txt", "percent\n")
  put("skipme/x.log", "excluded\n")
  put("keep.log", "a log\n")
  os.execute(("cd %s/many && head -c %d /dev/urandom | split -b 4096 -a 4 - f"):format(q(src), 1000 * 4096))
  H.write_random(src .. "/large-5m", 5 * MiB + 3)
  H.write_random(src .. "/sub/large-64m", 64 * MiB)
  os.execute(("cd %s && chmod 600 a.txt && chmod 751 sub && chmod 700 sub/deep/er && chmod 755 -- -dash"):format(q(src)))
  os.execute(("cd %s && ln -s a.txt lnk && ln -s ../a.txt sub/up && ln -s /etc/passwd abs && ln -s ../../outside esc")
    :format(q(src)))
  os.execute(("cd %s && touch -h -d '2001-02-03 04:05:06.789' a.txt sub/b.txt lnk empty-dir && touch -d '1999-12-31 23:59:59' sub/deep")
    :format(q(src)))
end

-- The snapshot SRC should sync to: out-of-tree links left out.
local function expected(src)
  local t = H.snapshot(src)
  t["abs"], t["esc"] = nil, nil
  return t
end

local function same_tree(want, got)
  for path, w in pairs(want) do
    local g = got[path]
    assert(g, "missing: " .. path)
    for _, k in ipairs { "type", "mode", "size", "sha256", "target", "mtime" } do
      if not (w.type == "link" and k == "mode") then
        assert.are.equal(w[k], g[k], ("%s: %s"):format(path, k))
      end
    end
  end
  for path in pairs(got) do assert(want[path], "extra: " .. path) end
end

describe("udpxfer.sync", function()
  local root, src, srv

  setup(function()
    root = H.tmpdir()
    src = root .. "/src"
    os.execute("mkdir -p " .. q(src) .. " " .. q(root .. "/outside"))
    make_tree(src)
    srv = assert(udpxfer.serve { dir = src, port = 0 })
  end)

  teardown(function()
    srv:close()
    H.rmrf(root)
  end)

  -- Sync REMOTE into DIR from SERVERS (default: srv); returns the result
  -- (or nil, message, code) and the file events.
  local function sync(dir, opts, servers)
    opts = opts or {}
    local events = {}
    local o = { remote = opts.remote or ".", dir = dir, broadcast = false, servers = {},
      on_file = function(ev) events[#events + 1] = ev end }
    for k, v in pairs(opts) do o[k] = v end
    local objs = {}
    for _, s in ipairs(servers or { srv }) do
      o.servers[#o.servers + 1] = "127.0.0.1:" .. s:port()
      objs[#objs + 1] = s
    end
    local s, msg, code = udpxfer.sync(o)
    if not s then return nil, msg, code end
    table.insert(objs, 1, s)
    assert.is_true(H.drive(objs, function() return s.outcome ~= nil end, 120))
    local res, emsg, ecode = s:result()
    s:close()
    return res, events, emsg, ecode
  end

  local function fresh(name)
    local d = root .. "/" .. name
    os.execute("rm -rf " .. q(d) .. " && mkdir " .. q(d))
    return d
  end

  local function actions(events)
    local t = {}
    for _, ev in ipairs(events) do t[ev.path] = ev.action end
    return t
  end

  it("syncs a tree byte for byte: folders, empty files, odd names, modes, mtimes, safe links", function()
    local dst = fresh("one")
    local res, events = sync(dst)
    assert.is_table(res, events)
    same_tree(expected(src), H.snapshot(dst))
    local acts = actions(events)
    assert.are.equal("skip", acts["abs"], "a link to an absolute path is skipped")
    assert.are.equal("skip", acts["esc"], "a link climbing out of the tree is skipped")
    assert.are.equal(1013, res.files)
    assert.are.equal(0, res.errors)
    assert.are.equal("integer", math.type(res.bytes_fetched))
    assert.is_true(res.bytes_fetched >= 69 * MiB, "every file fetched: " .. res.bytes_fetched)
    assert.is_true(res.bytes_wire >= res.bytes_fetched)
    assert.is_nil(H.read(root .. "/outside/x"), "nothing outside")
  end)

  it("fetches nothing on a second run, and reads no local file to know it", function()
    local dst = fresh("again")
    assert.is_table((sync(dst)))
    local res, events = sync(dst)
    assert.are.equal(0, res.bytes_fetched)
    assert.are.equal(0, res.changed)
    assert.are.equal(0, res.checked, "the index vouched for every local file")
    for _, ev in ipairs(events) do assert.are.equal("skip", ev.action, ev.path) end -- the unsafe links
    assert.is_true(res.bytes_wire < 200 * 1024, "the listing alone: " .. res.bytes_wire)
  end)

  it("fetches only the changed chunks after 1 KiB changes in the middle of a 64 MiB file", function()
    local dst = fresh("delta")
    assert.is_table((sync(dst)))
    local rescans = srv:stats().catalog_rescans
    os.execute(("head -c 1024 /dev/urandom | dd of=%s bs=1 seek=%d conv=notrunc status=none")
      :format(q(src .. "/sub/large-64m"), 32 * MiB + 100))
    local res, events = sync(dst)
    assert.is_table(res, events)
    same_tree(expected(src), H.snapshot(dst))
    assert.are.equal("fetch", actions(events)["sub/large-64m"])
    assert.is_true(res.bytes_fetched <= 2 * 16384, "at most two 16 KiB chunks: " .. res.bytes_fetched)
    assert.is_true(res.bytes_reused >= 64 * MiB - 2 * 16384, "the rest reused: " .. res.bytes_reused)
    assert.is_true(res.bytes_wire < 300 * 1024, "listing, tree path and chunks: " .. res.bytes_wire)
    local st = srv:stats()
    assert.are.equal(rescans, st.catalog_rescans, "the change came from inotify, not a scan of the tree")
    assert.is_true(st.catalog_watches >= 6, "every folder watched: " .. st.catalog_watches)
  end)

  it("--delete removes what the listing lacks, inside the folder only, and keeps excluded entries", function()
    local dst = fresh("del")
    assert.is_table((sync(dst)))
    H.write(dst .. "/extra.txt", "not on the server")
    os.execute("mkdir -p " .. q(dst .. "/extra-dir/inner") .. " && echo x > " .. q(dst .. "/extra-dir/inner/f"))
    H.write(dst .. "/mine.log", "excluded, kept")
    local res, events = sync(dst, { delete = true, exclude = { "*.log" } })
    assert.is_table(res, events)
    local acts = actions(events)
    assert.are.equal("delete", acts["extra.txt"])
    assert.are.equal("delete", acts["extra-dir"])
    assert.is_nil(H.read(dst .. "/extra.txt"))
    assert.are.equal("excluded, kept", H.read(dst .. "/mine.log"))
    assert.are.equal("a log\n", H.read(dst .. "/keep.log"), "an excluded file already there is left alone")
    assert.is_true(res.deleted >= 4)
  end)

  it("--exclude leaves matching names and folders out", function()
    local dst = fresh("excl")
    local res = sync(dst, { exclude = { "skipme/", "*.log", "many/f*" } })
    assert.is_table(res)
    local got = H.snapshot(dst)
    assert.is_nil(got["skipme"])
    assert.is_nil(got["keep.log"])
    assert.is_nil(got["many/faaa"])
    assert.is_table(got["many"], "the folder itself is not excluded")
    assert.is_table(got["a.txt"])
  end)

  it("--dry-run changes nothing and reports what would change", function()
    local dst = fresh("dry")
    assert.is_table((sync(dst)))
    H.write(dst .. "/a.txt", "changed locally\n")
    H.write(dst .. "/extra", "x")
    local before = H.snapshot(dst)
    local res, events = sync(dst, { dry_run = true, delete = true })
    assert.is_table(res, events)
    assert.is_true(res.dry_run)
    same_tree(before, H.snapshot(dst))
    local acts = actions(events)
    assert.are.equal("fetch", acts["a.txt"])
    assert.are.equal("delete", acts["extra"])
  end)

  it("refuses to write through a local symlink: an error without --delete, the link replaced with it", function()
    local dst = fresh("trap")
    os.execute(("ln -s %s %s"):format(q(root .. "/outside"), q(dst .. "/sub")))
    local res, events, msg, code = sync(dst)
    assert.is_nil(res)
    assert.are.equal("io", code)
    assert.matches("in the way", msg)
    assert.are.same({}, H.ls(root .. "/outside"), "nothing written outside")
    assert.are.equal("error", actions(events)["sub"])
    res = sync(dst, { delete = true })
    assert.is_table(res)
    assert.are.same({}, H.ls(root .. "/outside"), "the link went, not what it points at")
    same_tree(expected(src), H.snapshot(dst))
  end)

  it("is fed by two servers holding the same tree", function()
    local copy = root .. "/copy"
    os.execute(("rm -rf %s && cp -a %s %s"):format(q(copy), q(src), q(copy)))
    local srv2 = assert(udpxfer.serve { dir = copy, port = 0 })
    assert.is_table((sync(fresh("warm"), {}, { srv2 }))) -- its files hashed: it offers them at once
    local dst = fresh("two")
    local tx1, tx2 = srv:stats().tx_bytes, srv2:stats().tx_bytes
    local res = sync(dst, {}, { srv, srv2 })
    local sent1, sent2 = srv:stats().tx_bytes - tx1, srv2:stats().tx_bytes - tx2
    srv2:close()
    assert.is_table(res)
    assert.are.equal(2, res.servers)
    same_tree(expected(src), H.snapshot(dst))
    assert.is_true(sent1 > 10 * MiB and sent2 > 10 * MiB, ("both sent: %d and %d bytes"):format(sent1, sent2))
  end)

  it("syncs a folder of the tree, and a share, by name", function()
    local shared = assert(udpxfer.serve { dir = src, port = 0, shares = { docs = src .. "/sub" } })
    local dst = fresh("part")
    assert.is_table((sync(dst, { remote = "sub/deep" })))
    assert.are.equal("gamma\n", H.read(dst .. "/er/c.txt"))
    local dst2 = fresh("share")
    assert.is_table((sync(dst2, { remote = "docs" }, { shared })))
    assert.are.equal("beta\n", H.read(dst2 .. "/b.txt"))
    shared:close()
  end)

  it("keeps limit_rate for a tree of many small files, as for one large file", function()
    local limit = 2 * MiB
    local res = assert(sync(fresh("limited"), { remote = "many", limit_rate = limit }))
    assert.are.equal(1000 * 4096, res.bytes_fetched)
    local rate = res.bytes_fetched / res.elapsed
    print(("\n# 1,000 files of 4 KiB at limit_rate 2 MiB/s: %.2f MiB/s"):format(rate / MiB))
    assert.is_true(rate <= 1.15 * limit, ("%.0f bytes/s against a limit of %d"):format(rate, limit))
  end)

  it("fails with notfound for a folder no server has", function()
    local res, _, msg, code = sync(fresh("none"), { remote = "no/such" })
    assert.is_nil(res)
    assert.are.equal("notfound", code)
    assert.matches("not found", msg)
  end)
end)

describe("udpxfer.sync against hostile listings", function()
  local root

  before_each(function()
    root = H.tmpdir()
    os.execute("mkdir -p " .. q(root .. "/dst") .. " " .. q(root .. "/outside"))
  end)

  after_each(function() H.rmrf(root) end)

  local SHA = H.core.sha256("x")
  local function f(path, extra) return ("f\t644\t0\t1\t%s\t%s%s"):format(SHA, path, extra or "") end

  local function listing(lines)
    return "udpxfer-listing 1\nd\t755\t0\t.\n" .. table.concat(lines, "\n") .. "\n"
  end

  local function sync_with(text)
    local fake = H.fake_server(text, { x = "x" })
    local s = assert(udpxfer.sync { remote = ".", dir = root .. "/dst", broadcast = false,
      servers = { "127.0.0.1:" .. fake.port } })
    assert.is_true(H.drive({ s, fake }, function() return s.outcome ~= nil end, 20))
    local res, msg, code = s:result()
    s:close()
    fake:close()
    return res, msg, code
  end

  for _, case in ipairs {
    { "a path with ..", { f("../escape") } },
    { "an absolute path", { f("/etc/evil") } },
    { "a NUL in a name", { f("a%00b") } },
    { "a path through a listed link", { "l\t777\t0\tsomewhere\tlnk", f("lnk/x") } },
    { "a file that turns into a folder", { f("a"), f("a/b") } },
    { "the same name twice", { f("a"), f("a") } },
    { "entries out of order", { f("b"), f("a") } },
    { "an entry whose folder is not listed", { f("nodir/x") } },
    { "a malformed line", { "f\t644\tbad" } },
  } do
    it("refuses " .. case[1] .. ", touching nothing", function()
      local res, msg, code = sync_with(listing(case[2]))
      assert.is_nil(res)
      assert.are.equal("unsafe", code)
      assert.matches("listing refused", msg)
      assert.are.same({}, H.ls(root .. "/dst"))
      assert.are.same({}, H.ls(root .. "/outside"))
    end)
  end

  it("takes a well-formed listing from the same server", function()
    local res = sync_with(listing { f("x") })
    assert.is_table(res)
    assert.are.equal("x", H.read(root .. "/dst/x"))
  end)
end)

describe("listings and folder scans in memory", function()
  local root

  before_each(function() root = H.tmpdir() end)
  after_each(function() H.rmrf(root) end)

  -- A listing of N folders (and, with FILES, a file in each).
  local function big_listing(n, files)
    local parts = { "udpxfer-listing 1\nd\t755\t0\t.\n" }
    local sha = H.core.sha256("x")
    for i = 1, n do
      parts[#parts + 1] = ("d\t755\t0\td%07d\n"):format(i)
      if files then parts[#parts + 1] = ("f\t644\t0\t1\t%s\td%07d/x\n"):format(sha, i) end
    end
    return table.concat(parts)
  end

  local function heap_kib(fn)
    collectgarbage()
    collectgarbage()
    local before = collectgarbage("count")
    local keep = fn()
    collectgarbage()
    collectgarbage()
    return collectgarbage("count") - before, keep
  end

  it("decodes a listing into records, not a table an entry: a few bytes of Lua heap per entry", function()
    local text = big_listing(50000, true)
    local kib, l = heap_kib(function() return assert(core.listing_decode(text)) end)
    assert.are.equal(100001, #l)
    assert.is_true(kib < 100, ("%.0f KiB of Lua heap for 100,001 entries"):format(kib))
  end)

  it("reads entries through views and tables alike: escaped names, links, upper-case hashes, file numbers", function()
    local sha = ("AB"):rep(32)
    local l = assert(core.listing_decode("udpxfer-listing 1\nd\t755\t7\t.\n" .. "f\t644\t5\t3\t" .. sha
      .. "\ta%20b\n" .. "l\t777\t6\tt%25x\tlnk\n" .. "d\t700\t8\tsub\n"))
    assert.are.equal(4, #l)
    local e = l[2]
    assert.are.same({ "file", "a b", 3, sha:lower(), 420, 5 }, { e.type, e.path, e.size, e.sha256, e.mode, e.mtime })
    assert.is_nil(e.target)
    assert.are.same({ type = "file", mode = 420, mtime = 5, path = "a b", size = 3, sha256 = sha:lower(), number = 0 },
      l:get(2))
    assert.are.same({ type = "link", mode = 511, mtime = 6, path = "lnk", target = "t%x" }, l:get(3))
    local paths = {}
    for i, v in ipairs(l) do paths[i] = v.path end
    assert.are.same({ ".", "a b", "lnk", "sub" }, paths)
    assert.are.same({ 1, 2, 3, 4 }, { l:find("."), l:find("a b"), l:find("lnk"), l:find("sub") })
    assert.is_nil(l:find("a%20b"))
    assert.is_nil(l[5])
    assert.has_error(function() e.path = "x" end)
    assert.is_false(getmetatable(e), "a view's metatable (and so its unchecked __index) stays hidden")
  end)

  it("numbers a listing's files in order, and keeps only the mode bits asked for", function()
    local sha = ("ab"):rep(32)
    local l = assert(core.listing_decode("udpxfer-listing 1\nd\t755\t7\t.\n" .. "f\t4755\t5\t3\t" .. sha
      .. "\ta\n" .. "d\t1777\t8\tb\n" .. "f\t644\t5\t3\t" .. sha .. "\tb/c\n", nil, 511))
    assert.are.same({ 0, 1 }, { l[2].number, l[4].number })
    assert.is_nil(l[3].number)
    assert.are.same({ 493, 493, 511, 420 }, { l[1].mode, l[2].mode, l[3].mode, l[4].mode })
  end)

  it("refuses a listing of more than max_entries: sync (unsafe, nothing touched), list, the command", function()
    local later = H.cleanups(finally)
    local text = big_listing(20) -- 21 entries with "."
    local fake = H.fake_server(text, {})
    later(function() fake:close() end)
    local function run(obj)
      assert.is_true(H.drive({ obj, fake }, function() return obj.outcome ~= nil end, 20))
      local res, msg, code = obj:result()
      obj:close()
      return res, msg, code
    end
    local opts = { remote = ".", dir = root, broadcast = false, servers = { "127.0.0.1:" .. fake.port }, max_entries = 20 }
    local res, msg, code = run(assert(udpxfer.sync(opts)))
    assert.is_nil(res)
    assert.are.equal("unsafe", code)
    assert.are.equal("listing .: the listing has more than 20 entries (max_entries)", msg)
    assert.are.same({}, H.ls(root))
    opts.max_entries = 21
    assert.is_table((run(assert(udpxfer.sync(opts)))))
    assert.are.equal(20, #H.sh("ls -d " .. q(root) .. "/d*"):gsub("[^\n]", ""))
    local _, lmsg, lcode = run(assert(udpxfer.list { remote = ".", broadcast = false,
      servers = { "127.0.0.1:" .. fake.port }, max_entries = 20 }))
    assert.are.equal("unsafe", lcode)
    assert.matches("more than 20 entries", lmsg)
    assert.has_error(function() udpxfer.sync { remote = ".", dir = root, max_entries = 0 } end)
    -- the command: exit 4, one line
    os.execute("mkdir -p " .. q(root .. "/src") .. " " .. q(root .. "/out"))
    for i = 1, 5 do H.write(("%s/src/f%d"):format(root, i), "x") end
    local pid, port, pipe = H.start_server(root .. "/src", nil, nil, true)
    later(function() H.kill(pid) pipe:close() end)
    local base = ("%s %%s --server 127.0.0.1:%d --broadcast none --max-entries %%d"):format(H.UDPXFER, port)
    local rc, _, err = H.run(base:format("sync . " .. q(root .. "/out"), 5))
    assert.are.equal(4, rc)
    assert.are.equal("udpxfer: listing .: the listing has more than 5 entries (max_entries)\n", err)
    assert.are.same({}, H.ls(root .. "/out"))
    rc, _, err = H.run(base:format("ls .", 5))
    assert.are.equal(4, rc, err)
    assert.are.equal(0, (H.run(base:format("sync . " .. q(root .. "/out"), 6))))
    assert.are.equal(2, (H.run(base:format("sync . " .. q(root .. "/out"), 0))))
  end)

  it("ls merges versions as they come, counting each entry's servers, within max_entries", function()
    local a = "udpxfer-listing 1\nd\t755\t0\t.\nf\t644\t0\t1\t" .. H.core.sha256("1") .. "\tx\nd\t755\t0\ty\n"
    local b = "udpxfer-listing 1\nd\t755\t0\t.\nf\t644\t0\t1\t" .. H.core.sha256("2") .. "\tx\nd\t755\t0\ty\n"
      .. "d\t755\t0\tz\n"
    local fa, fb = H.fake_server(a, {}), H.fake_server(b, {})
    finally(function() fa:close() fb:close() end)
    local function ls(max)
      local l = assert(udpxfer.list { remote = ".", broadcast = false, max_entries = max,
        servers = { "127.0.0.1:" .. fa.port, "127.0.0.1:" .. fb.port } })
      assert.is_true(H.drive({ l, fa, fb }, function() return l.outcome ~= nil end, 20))
      local res, msg, code = l:result()
      l:close()
      return res, msg, code
    end
    local res = assert(ls())
    assert.are.equal(2, res.versions)
    local got = {}
    for _, e in ipairs(res.entries) do got[#got + 1] = ("%s %s %d"):format(e.path, e.type, e.servers) end
    assert.are.same({ ". dir 2", "x file 1", "x file 1", "y dir 2", "z dir 1" }, got)
    local none, msg, code = ls(4)
    assert.is_nil(none)
    assert.are.equal("unsafe", code)
    assert.matches("merge to more than 4 entries", msg)
  end)

  it("scans a folder into records: views, a map by path with pairs, udpxfer's own files apart", function()
    local dir = root .. "/scan"
    os.execute(("mkdir -p %s/sub && cd %s && head -c 20000 /dev/zero | split -b 1 -a 5 - f && ln -s faaaaa lnk")
      :format(q(dir), q(dir)))
    H.write(dir .. "/.x.udpxfer-0123abcd", "partial")
    local d = assert(core.dir(dir))
    finally(function() d:close() end)
    local kib, s = heap_kib(function() return assert(d:scan()) end)
    assert.are.equal(20003, #s)
    assert.is_true(kib < 100, ("%.0f KiB of Lua heap for 20,003 entries"):format(kib))
    assert.are.same({ ".x.udpxfer-0123abcd" }, s:own())
    local map = s:map()
    assert.are.equal("dir", map.sub.type)
    assert.are.same({ "link", "faaaaa" }, { map.lnk.type, map.lnk.target })
    assert.are.same({ "file", 1 }, { map.faaabc.type, map.faaabc.size })
    assert.is_nil(map[".x.udpxfer-0123abcd"])
    assert.is_true(s[s:find(".x.udpxfer-0123abcd")].own)
    local n = 0
    for path, st in pairs(map) do
      n = n + 1
      assert.are.equal(path, st.path)
    end
    assert.are.equal(20002, n)
    assert.has_error(function() map.x = 1 end)
    assert.is_false(getmetatable(map.faaabc), "a view's metatable (and so its unchecked __index) stays hidden")
  end)
end)

describe("udpxfer sync (the command), killed and run again", function()
  local root, src, pid, port, pipe

  setup(function()
    root = H.tmpdir()
    src = root .. "/src"
    os.execute("mkdir -p " .. q(src) .. " " .. q(root .. "/outside"))
    make_tree(src)
    pid, port, pipe = H.start_server(src, nil, nil, true)
  end)

  teardown(function()
    H.kill(pid)
    pipe:close()
    H.rmrf(root)
  end)

  local function cmd(dst, extra)
    return ("%s sync . %s --server 127.0.0.1:%d --broadcast none %s"):format(H.UDPXFER, q(dst), port, extra or "")
  end

  -- Start a sync and SIGKILL it when STOP(event) says so.
  local function killed_at(dst, stop)
    local spid, p = H.spawn(cmd(dst, "--json --limit-rate 40M"))
    local json = require "dkjson"
    local killed = false
    for line in p:lines() do
      local ev = json.decode(line)
      if ev and stop(ev) then
        H.kill(spid, "KILL")
        killed = true
        break
      end
    end
    p:close()
    return killed
  end

  for _, case in ipairs {
    { "after its first files", function(ev) return ev.type == "file" end },
    { "halfway through the small files", (function()
      local n = 0
      return function(ev)
        n = n + (ev.type == "file" and 1 or 0)
        return n >= 500
      end
    end)() },
    { "while the 64 MiB file is under way", function(ev)
      return ev.type == "progress" and ev.bytes_done > 20 * MiB
    end },
  } do
    it("SIGKILLed " .. case[1] .. ", runs again to the right tree with no leftovers", function()
      local dst = root .. "/k" .. #H.ls(root)
      os.execute("mkdir " .. q(dst))
      assert.is_true(killed_at(dst, case[2]), "killed before it finished")
      local code, out, err = H.run(cmd(dst, "--json"))
      assert.are.equal(0, code, err)
      assert.matches('"type":"done"', out)
      same_tree(expected(src), H.snapshot(dst))
      local d = assert(core.dir(dst))
      for _, e in ipairs(d:scan()) do assert.is_nil(e.own, "a temporary file left: " .. e.path) end
      d:close()
    end)
  end

  it("SIGINT exits 130 with one line, keeps the large file's partial file, and a run again resumes it", function()
    local dst = root .. "/int"
    os.execute("mkdir " .. q(dst))
    local errf = os.tmpname()
    local spid, p = H.spawn(cmd(dst, "--json --limit-rate 40M") .. " 2>" .. errf)
    local json = require "dkjson"
    local sent = false
    for line in p:lines() do
      local ev = json.decode(line)
      if not sent and ev.type == "progress" and ev.bytes_done > 44 * MiB then
        H.kill(spid, "INT")
        sent = true
      end
    end
    local _, how, code = p:close()
    local err = H.read(errf)
    os.remove(errf)
    assert.is_true(sent, "interrupted before it finished")
    assert.are.same({ "exit", 130 }, { how, code })
    assert.are.equal("udpxfer: interrupted\n", err)
    local d = assert(core.dir(dst))
    local own = {}
    for _, e in ipairs(d:scan()) do if e.own then own[#own + 1] = e.path end end
    d:close()
    assert.are.equal(1, #own, table.concat(own, " "))
    assert.matches("^sub/%.large%-64m%.udpxfer%-%x+$", own[1])
    local rc, out, rerr = H.run(cmd(dst, "--json"))
    assert.are.equal(0, rc, rerr)
    local large
    for line in out:gmatch("[^\n]+") do
      local ev = json.decode(line)
      if ev.type == "file" and ev.path == "sub/large-64m" then large = ev end
    end
    assert.is_table(large, "the large file was fetched again")
    assert.is_true(large.reused >= 8 * MiB, large.reused .. " bytes taken from the partial file")
    assert.are.equal(64 * MiB, large.bytes + large.reused)
    same_tree(expected(src), H.snapshot(dst))
    d = assert(core.dir(dst))
    for _, e in ipairs(d:scan()) do assert.is_nil(e.own, "a temporary file left: " .. e.path) end
    d:close()
  end)

  it("prints one summary line, and exits 0", function()
    local dst = root .. "/cli"
    os.execute("mkdir " .. q(dst))
    local code, out, err = H.run(cmd(dst))
    assert.are.equal(0, code, err)
    assert.matches("^%. %-> .*: 1013 files, %d+ changed, 0 deleted; fetched [%d.]+ MiB, reused 0 B, [%d.]+ MiB on the wire, in [%d.]+ s; 2 links skipped %(they lead out of the tree; %-v names them%)\n$", out)
    assert.are.equal("", err) -- the links it skips are the listing's, every run: counted, not listed
    code, _, err = H.run(cmd(dst) .. " -v")
    assert.are.equal(0, code, err)
    assert.matches("skip abs: link target leaves the tree: /etc/passwd", err)
  end)

  it("get -r is sync without --delete; ls lists what the servers offer", function()
    local dst = root .. "/getr"
    os.execute("mkdir " .. q(dst))
    H.write(dst .. "/mine", "kept")
    local code, _, err = H.run(("%s get -r sub %s --server 127.0.0.1:%d --broadcast none -q"):format(H.UDPXFER, q(dst), port))
    assert.are.equal(0, code, err)
    assert.are.equal("beta\n", H.read(dst .. "/b.txt"))
    assert.are.equal("kept", H.read(dst .. "/mine"))
    local lcode, lout = H.run(("%s ls sub --server 127.0.0.1:%d --broadcast none"):format(H.UDPXFER, port))
    assert.are.equal(0, lcode)
    assert.matches("%-rw%-r%-%-r%-%-            5  2001%-02%-03 %d%d:05  1  b%.txt\n", lout)
    assert.matches("drwx%-%-%-%-%-%-            %-  [%d: -]+  1  deep/er/\n", lout)
    local jcode, jout = H.run(("%s ls sub --server 127.0.0.1:%d --broadcast none --json"):format(H.UDPXFER, port))
    assert.are.equal(0, jcode)
    local last = require("dkjson").decode(jout:match("([^\n]+)\n$"))
    assert.are.equal("done", last.type)
    assert.are.equal(1, last.servers)
  end)

  it("exits 2 for a sync without its folder, 5 when the folder does not exist", function()
    assert.are.equal(2, (H.run(H.UDPXFER .. " sync .")))
    local code, _, err = H.run(cmd(root .. "/does-not-exist"))
    assert.are.equal(5, code)
    assert.matches("^udpxfer: .*does%-not%-exist: No such file or directory\n$", err)
  end)
end)

describe("udpxfer.sync across a server restart", function()
  it("keeps the partial file of a fetch the restarted server calls changed, and resumes it once", function()
    local root = H.tmpdir()
    finally(function() H.rmrf(root) end)
    local src, dst = root .. "/src", root .. "/dst"
    os.execute(("mkdir -p %s %s"):format(q(src), q(dst)))
    H.write_random(src .. "/big.bin", 48 * MiB)
    local srv = assert(udpxfer.serve { dir = src, port = 0 })
    local port = srv:port()
    local restarted = false
    local s = assert(udpxfer.sync { remote = ".", dir = dst, broadcast = false, servers = { "127.0.0.1:" .. port } })
    local deadline = core.now() + 60
    while not s.outcome and core.now() < deadline do
      s:step()
      srv:step()
      if not restarted and s:stats().bytes_done >= 32 * MiB then
        srv:close() -- the server restarts: its sessions, cookies and handles are gone
        srv = assert(udpxfer.serve { dir = src, port = port })
        restarted = true
      end
      core.poll({ s:pollfd(), "r", srv:pollfd(), "r" }, math.min(s:timeout() or 0.2, srv:timeout() or 0.2, 0.2))
    end
    local res, msg = s:result()
    s:close()
    srv:close()
    assert.is_true(restarted)
    assert.is_table(res, msg)
    assert.is_true(H.read(dst .. "/big.bin") == H.read(src .. "/big.bin"))
    -- what reached the disk before the restart (all but the slabs in memory) is not fetched again
    assert.is_true(res.bytes_reused >= 16 * MiB, "reused " .. res.bytes_reused)
    assert.is_true(res.bytes_fetched < 56 * MiB, "fetched " .. res.bytes_fetched)
    assert.are.same({}, H.partials(dst, "big.bin"))
  end)
end)

-- A folder served by a server in this process, for one test: SRC filled by
-- FILL(src, dst), DST beside it; both go afterwards (LATER: H.cleanups').
-- Returns src, dst, server, and a function syncing DST from it to the end
-- (OPTS: more sync options) that returns the result, or nil and a message.
local function served(later, fill, serve_opts)
  local root = H.tmpdir()
  later(function() H.rmrf(root) end)
  local src, dst = root .. "/src", root .. "/dst"
  os.execute(("mkdir -p %s %s"):format(q(src), q(dst)))
  fill(src, dst)
  local o = { dir = src, port = 0 }
  for k, v in pairs(serve_opts or {}) do o[k] = v end
  local srv = assert(udpxfer.serve(o))
  later(function() srv:close() end)
  local function sync(opts)
    local so = { remote = ".", dir = dst, broadcast = false, servers = { "127.0.0.1:" .. srv:port() } }
    for k, v in pairs(opts or {}) do so[k] = v end
    return udpxfer.run(assert(udpxfer.sync(so)), srv)
  end
  return src, dst, srv, sync
end

describe("udpxfer.sync of many new files in gaps", function()
  it("keeps its batches within what a server holds at once: none is evicted, no file goes alone", function()
    local started, ended = 0, {}
    local src, dst, _, sync = served(H.cleanups(finally), function(src, dst)
      -- 4,400 files, every other one already here: 2,200 new ones in 2,200
      -- ranges, so 19 batch requests of 120 ranges at most
      for i = 1, 4400 do
        local name = ("f%05d"):format(i)
        H.write(src .. "/" .. name, name)
        if i % 2 == 0 then H.write(dst .. "/" .. name, name) end
      end
      os.execute(("touch -r %s/f00001 %s/* %s/*"):format(q(src), q(src), q(dst)))
    end, { on_start = function() started = started + 1 end,
      on_done = function(ev) ended[ev.reason] = (ended[ev.reason] or 0) + 1 end })
    local res, msg = sync()
    assert.is_table(res, msg)
    assert.are.equal(2200, res.changed)
    assert.are.equal(1 + 19, started, "sessions: the listing and 19 batches, nothing evicted and fetched alone")
    assert.are.same({ complete = 20 }, ended)
    local got = H.snapshot(dst)
    got[".udpxfer-index"] = nil
    same_tree(H.snapshot(src), got)
  end)
end)

describe("a server that has sent many files", function()
  -- How many mappings of files below DIR this process holds.
  local function mappings(dir)
    local n = 0
    for line in io.lines("/proc/self/maps") do
      if line:find(dir .. "/", 1, true) then n = n + 1 end
    end
    return n
  end

  -- Served files beyond the descriptor limit (256) must not each keep a
  -- mapping: the kernel allows a process about 65,000, and a server out of
  -- them cannot allocate anything, listings included.
  local function check(count, size, most)
    local src, _, srv, sync = served(H.cleanups(finally), function(src)
      os.execute(("for i in $(seq 1 %d); do head -c %d /dev/urandom > %s/f$i; done"):format(count, size, q(src)))
    end)
    local res, msg = sync()
    assert.is_table(res, msg)
    assert.are.equal(count, res.changed)
    srv:step() -- nothing left to send: what it let go of is unmapped now
    local held = mappings(src)
    assert.is_true(held <= most, ("%d files of %d bytes sent: %d of them still mapped"):format(count, size, held))
  end

  it("keeps no mapping of a small one", function() check(600, 8192, 0) end)
  it("keeps no mapping of the large ones its descriptor limit closed", function()
    check(400, 1024 * 1024, 256) -- one per open descriptor at most
  end)
end)

describe("a server whose large file is rewritten while it runs", function()
  it("hashes it again when the writer closes it, so the next sync does not wait", function()
    local preparing = 0
    local src, dst, srv, run = served(H.cleanups(finally), function(src)
      H.write_random(src .. "/big.bin", 3 * 1024 * 1024)
    end, { async_hash_min = 1024 * 1024 })
    local function sync() return run { on_preparing = function() preparing = preparing + 1 end } end
    assert.is_table(sync())
    assert.are.equal(0, srv:stats().files_hashed_ahead)
    local f = assert(io.open(src .. "/big.bin", "r+b"))
    f:seek("set", 1500000)
    f:write(("x"):rep(1024))
    f:close()
    -- nobody asks: the server hears of the change and hashes it by itself
    assert.is_true(H.drive({ srv }, function()
      local st = srv:stats()
      return st.files_hashed_ahead == 1 and st.files_hashing == 0
    end, 20))
    preparing = 0
    local res, msg = sync()
    assert.is_table(res, msg)
    assert.are.equal(0, preparing, "the listing waited for a hash")
    assert.are.equal(1, res.changed)
    assert.is_true(res.bytes_fetched < 64 * 1024, "fetched " .. res.bytes_fetched)
    assert.is_true(H.read(src .. "/big.bin") == H.read(dst .. "/big.bin"))
    -- touched right after it was hashed: that version too, before anyone asks
    assert.is_true(os.execute("touch -d '2020-01-02 03:04:05' " .. q(src .. "/big.bin")))
    assert.is_true(H.drive({ srv }, function()
      local st = srv:stats()
      return st.files_hashed_ahead == 2 and st.files_hashing == 0
    end, 20))
    preparing = 0
    res, msg = sync()
    assert.is_table(res, msg)
    assert.are.equal(0, preparing, "the listing waited for a hash")
  end)
end)
