-- The local side of a sync and a fetch against a hostile LAN (listings
-- written by hand) and a hostile local user (who can write in the synced
-- folder and races the sync): what is changed, created or removed stays
-- what the listing and the folder say, inside the folder.
local H = require "spec.helper"
local core = H.core

local q = H.shell_quote

describe("sync against a local user racing it", function()
  local root

  before_each(function() root = H.tmpdir() end)
  after_each(function() H.rmrf(root) end)

  it("never changes the mode of a file outside while a listed folder and a symlink to it swap places", function()
    if not H.is_root() then
      pending("needs root: only root's chmod can reach a file it does not own")
      return
    end
    local dst, victim = root .. "/dst", root .. "/victim"
    os.execute(("mkdir -m 700 %s %s/d && ln -s %s %s/dl"):format(q(dst), q(dst), q(victim), q(dst)))
    H.write(victim, "secret")
    os.execute("chmod 600 " .. q(victim))
    local victim_time = H.sh("stat -c %y " .. q(victim))
    assert.are.equal(0, (H.run("make -s build/swapper")))
    local seed = tonumber(os.getenv("UDPXFER_SEED") or "") or os.time()
    local pid, out = H.spawn(("./build/swapper %s d dl 5 50000000 %d"):format(q(dst), seed))
    assert.are.equal("ready", out:read("l"))
    local deadline, runs, changed_after = core.now() + 4.5, 0, nil
    local started = core.now()
    -- Each run's listing gives d another mode, so every run sets it.
    while core.now() < deadline and not changed_after do
      runs = runs + 1
      H.sync_listing(dst, H.listing({ ("d\t%s\t0\td"):format(runs % 2 == 0 and "755" or "750") }, "700"))
      if H.mode(victim) ~= 384 then changed_after = core.now() - started end
    end
    if changed_after then H.kill(pid) end
    local last = out:read("a")
    out:close()
    local swaps = tonumber(last:match("swaps (%d+)")) or 0
    assert.is_nil(changed_after, ("the victim's mode became %o after %.2f s, %d runs (seed %d)")
      :format(H.mode(victim), changed_after or 0, runs, seed))
    assert.are.equal(victim_time, H.sh("stat -c %y " .. q(victim)), "its mtime unchanged too")
    assert.is_true(runs >= 20, "runs: " .. runs)
    assert.is_true(swaps > 10000, "swaps: " .. swaps)
    print(("\n# chmod race: %d syncs, %d swaps in %.1f s, seed %d: victim 0600 throughout")
      :format(runs, swaps, core.now() - started, seed))
  end)
end)

describe("sync's modes", function()
  local root, dst

  before_each(function()
    root = H.tmpdir()
    dst = root .. "/dst"
    os.execute("mkdir -m 700 " .. q(dst))
  end)
  after_each(function() H.rmrf(root) end)

  local SHA = core.sha256("x")
  local LISTING = H.listing({
    "d\t2775\t0\tg",
    "f\t4755\t0\t1\t" .. SHA .. "\ts",
    "d\t1777\t0\tt",
    "f\t6644\t0\t1\t" .. SHA .. "\tt/u",
  }, "7777")

  it("applies the permission bits alone, and never sets DIR's own mode", function()
    local res, msg = H.sync_listing(dst, LISTING, { s = "x", ["t/u"] = "x" })
    assert.is_table(res, msg)
    assert.are.same({ 448, 509, 493, 511, 420 },
      { H.mode(dst), H.mode(dst .. "/g"), H.mode(dst .. "/s"), H.mode(dst .. "/t"), H.mode(dst .. "/t/u") })
    local again = H.sync_listing(dst, LISTING, { s = "x", ["t/u"] = "x" })
    assert.are.equal(0, again.changed, "the modes it applies are the modes it compares")
  end)

  it("applies setuid, setgid and sticky bits with perms_all, still not DIR's mode", function()
    local res, msg = H.sync_listing(dst, LISTING, { s = "x", ["t/u"] = "x" }, { perms_all = true })
    assert.is_table(res, msg)
    assert.are.same({ 448, 1533, 2541, 1023, 3492 },
      { H.mode(dst), H.mode(dst .. "/g"), H.mode(dst .. "/s"), H.mode(dst .. "/t"), H.mode(dst .. "/t/u") })
  end)

  it("takes --perms-all on sync and get -r, and drops the bits without it", function()
    local src = root .. "/src"
    os.execute(("mkdir %s && echo hi > %s/s && chmod 4755 %s/s"):format(q(src), q(src), q(src)))
    local pid, port, pipe = H.start_server(src, nil, nil, true)
    local function run(cmd, dir, extra)
      os.execute("mkdir -p " .. q(dir))
      return H.run(("%s %s %s --server 127.0.0.1:%d --broadcast none -q %s"):format(H.UDPXFER, cmd, q(dir), port, extra))
    end
    local c1, _, e1 = run("sync .", root .. "/plain", "")
    local c2, _, e2 = run("sync .", root .. "/all", "--perms-all")
    local c3, _, e3 = run("get -r .", root .. "/getr", "--perms-all")
    H.kill(pid)
    pipe:close()
    assert.are.same({ 0, 0, 0 }, { c1, c2, c3 }, (e1 or "") .. (e2 or "") .. (e3 or ""))
    assert.are.equal(493, H.mode(root .. "/plain/s"))
    assert.are.equal(2541, H.mode(root .. "/all/s"))
    assert.are.equal(2541, H.mode(root .. "/getr/s"))
  end)
end)

describe("links a listing creates", function()
  local plan = require "udpxfer.plan"

  it("are safe only with every .. first, climbing no higher than the link's folder", function()
    local cases = {
      { "lnk", "a.txt", true }, { "sub/up", "../a.txt", true }, { "a/b/L", "../..", true },
      { "a/b/L", "../../x/y/z", true }, { "x", "./a/./b", true }, { "a/L", ".././b", true },
      { "abs", "/etc/passwd", false }, { "esc", "../x", false }, { "a/b/L", "../../..", false },
      { "empty", "", false },
      { "passwd", "a/b/c/d/e/f/g/h/L/../../../../../../../../etc/passwd", false },
      { "x", "a/../b", false }, { "x", "a/..", false }, { "s/x", "../a/../../b", false },
    }
    for _, c in ipairs(cases) do
      assert.are.equal(c[3], plan.safe_link(c[1], c[2]), c[1] .. " -> " .. c[2])
    end
  end)

  -- Where TARGET, a link's text in folder DIR (a list of names), leads,
  -- following the listed links (LINKS: { [path] = target }) as the kernel
  -- would: the names of the place, false once it climbs above the tree,
  -- "loop" after 40 links (as Linux). Unlisted names are taken as folders.
  local function resolve(links, dir, target, budget)
    local at = { table.unpack(dir) }
    for part in target:gmatch("[^/]+") do
      if part == ".." then
        if #at == 0 then return false end
        at[#at] = nil
      elseif part ~= "." then
        at[#at + 1] = part
        local t = links[table.concat(at, "/")]
        if t then
          if budget == 0 then return "loop" end -- it fails (ELOOP), it does not escape
          at[#at] = nil
          local r = resolve(links, at, t, budget - 1)
          if type(r) ~= "table" then return r end
          at = r
        end
      end
    end
    return at
  end

  it("never lead outside the tree when followed through each other (seeded random listings)", function()
    math.randomseed(23)
    local names, kept, cases = { "a", "b", "L", "M" }, 0, 3000
    for _ = 1, cases do
      -- folders a, a/b, b; links at random places to random texts
      local dirs = { {}, { "a" }, { "a", "b" }, { "b" } }
      local links, order = {}, {}
      for _ = 1, math.random(1, 4) do
        local dir = dirs[math.random(#dirs)]
        local path = table.concat(dir, "/") .. (#dir > 0 and "/" or "") .. ({ "L", "M", "N" })[math.random(3)]
        local parts = {}
        for _ = 1, math.random(1, 6) do
          local r = math.random(6)
          parts[#parts + 1] = r <= 2 and ".." or r == 3 and "." or names[math.random(#names)]
        end
        if not links[path] then
          links[path], order[#order + 1] = table.concat(parts, "/"), { dir = dir, path = path }
        end
      end
      local safe = {}
      for path, t in pairs(links) do
        if plan.safe_link(path, t) then safe[path] = t end
      end
      for _, l in ipairs(order) do
        if safe[l.path] then
          kept = kept + 1
          assert(resolve(safe, l.dir, safe[l.path], 40), ("%s -> %s leads out through %s"):format(l.path, safe[l.path],
            require("dkjson").encode(safe)))
        end
      end
    end
    assert.is_true(kept > 1000, "links kept: " .. kept)
  end)

  it("skips a link that leads out through another link, end to end", function()
    local root = H.tmpdir()
    local dst = root .. "/dst"
    os.execute("mkdir " .. q(dst))
    local lines, path = {}, ""
    for _, d in ipairs { "a", "b", "c", "d", "e", "f", "g", "h" } do
      path = path == "" and d or path .. "/" .. d
      lines[#lines + 1] = "d\t755\t0\t" .. path
    end
    lines[#lines + 1] = "l\t777\t0\t../../../../../../../..\t" .. path .. "/L"
    lines[#lines + 1] = "l\t777\t0\t" .. path .. "/L/../../../../../../../../etc/passwd\tpasswd"
    local res, msg, code, events = H.sync_listing(dst, H.listing(lines))
    local skipped = {}
    for _, ev in ipairs(events) do if ev.action == "skip" then skipped[ev.path] = ev.message end end
    local made = H.sh("readlink " .. q(dst .. "/passwd"))
    H.rmrf(root)
    assert.is_table(res, msg, code)
    assert.are.equal("", made, "no link made at passwd")
    assert.matches("leaves the tree", skipped["passwd"])
    assert.is_nil(skipped[path .. "/L"], "a link to the tree's root is kept")
  end)
end)

describe("sync's local copies", function()
  local index = require "udpxfer.index"

  it("are checked against the listed SHA-256: a source that changed is not copied, the file is fetched", function()
    local root = H.tmpdir()
    local dst = root .. "/dst"
    os.execute("mkdir " .. q(dst))
    local good = "the listed content\n"
    -- The index vouches for mine.txt holding GOOD, but it holds other
    -- bytes with the same stat: what a rename over it after the scan gives.
    -- honest.txt holds what the index says.
    H.write(dst .. "/mine.txt", "planted content!!!\n")
    H.write(dst .. "/honest.txt", "honest\n")
    local d = assert(core.dir(dst))
    local idx = {}
    for name, sha in pairs { ["mine.txt"] = core.sha256(good), ["honest.txt"] = core.sha256("honest\n") } do
      idx[name] = index.record(assert(d:stat(name)), sha)
    end
    assert(index.save(d, idx, {}))
    d:close()
    local text = H.listing({
      ("f\t644\t0\t%d\t%s\tcopy.txt"):format(#good, core.sha256(good)),
      ("f\t644\t0\t7\t%s\thonest-copy.txt"):format(core.sha256("honest\n")),
    })
    local res, msg, code, events = H.sync_listing(dst, text, { ["copy.txt"] = good })
    local got, honest = H.read(dst .. "/copy.txt"), H.read(dst .. "/honest-copy.txt")
    H.rmrf(root)
    assert.is_table(res, msg, code)
    assert.are.equal(good, got)
    assert.are.equal("honest\n", honest)
    local actions = {}
    for _, ev in ipairs(events) do actions[ev.path] = ev.action end
    assert.are.same({ ["copy.txt"] = "fetch", ["honest-copy.txt"] = "copy" }, actions)
    assert.are.equal(#good, res.bytes_fetched)
    assert.are.equal(7, res.bytes_reused)
  end)
end)

describe("sync --delete where the listing turns a folder into a file or a link", function()
  local root, dst

  before_each(function()
    root = H.tmpdir()
    dst = root .. "/dst"
    os.execute(("mkdir -p %s/x/sub && echo log > %s/x/keep.log && echo t > %s/x/sub/other.txt")
      :format(q(dst), q(dst), q(dst)))
  end)
  after_each(function() H.rmrf(root) end)

  local SHA = core.sha256("x")
  local AS_FILE = H.listing({ "f\t644\t0\t1\t" .. SHA .. "\tx" })
  local AS_LINK = H.listing({ "l\t777\t0\ty\tx", "d\t755\t0\ty" })

  local function events_of(events)
    local t = {}
    for _, ev in ipairs(events) do t[ev.path] = ev end
    return t
  end

  for _, case in ipairs {
    { "a file, with --exclude '*.log'", AS_FILE, { "*.log" } },
    { "a link, with --exclude '*.log'", AS_LINK, { "*.log" } },
    { "a file, with --exclude x/", AS_FILE, { "x/" } },
  } do
    it("keeps the excluded entries when it becomes " .. case[1] .. ": the entry is an error", function()
      local res, msg, code, events = H.sync_listing(dst, case[2], { x = "x" }, { delete = true, exclude = case[3] })
      assert.is_nil(res)
      assert.are.equal("io", code)
      assert.matches("excluded entries stay", msg)
      assert.are.equal("error", events_of(events)["x"].action)
      assert.are.equal("log\n", H.read(dst .. "/x/keep.log"))
      assert.are.equal("t\n", H.read(dst .. "/x/sub/other.txt"))
    end)
  end

  it("replaces the folder when nothing in it is excluded", function()
    local res, msg = H.sync_listing(dst, AS_FILE, { x = "x" }, { delete = true, exclude = { "*.tmp" } })
    assert.is_table(res, msg)
    assert.are.equal("x", H.read(dst .. "/x"))
  end)
end)

describe("fetches of one name, and of names alike", function()
  local udpxfer = H.udpxfer
  local MiB = 1024 * 1024
  local root, src, out, srv

  before_each(function()
    root = H.tmpdir()
    src, out = root .. "/src", root .. "/out"
    os.execute(("mkdir %s %s"):format(q(src), q(out)))
    srv = assert(udpxfer.serve { dir = src, port = 0 })
  end)
  after_each(function()
    srv:close()
    H.rmrf(root)
  end)

  local function get(name, extra)
    local o = { name = name, out = out, broadcast = false, servers = { "127.0.0.1:" .. srv:port() } }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(udpxfer.get(o))
  end

  local function drive(objs, done)
    local all = { srv }
    for _, g in ipairs(objs) do all[#all + 1] = g end
    assert.is_true(H.drive(all, done, 30), "finished in time")
  end

  it("never take each other's temporary file: two gets of one name at once both succeed", function()
    H.write_random(src .. "/big", 4 * MiB)
    local started = false
    local slow = get("big", { limit_rate = 2 * MiB, on_start = function() started = true end })
    drive({ slow }, function() return started end)
    local fast = get("big")
    drive({ slow, fast }, function() return slow.outcome ~= nil and fast.outcome ~= nil end)
    local r1, m1 = slow:result()
    local r2, m2 = fast:result()
    slow:close()
    fast:close()
    assert.is_table(r2, m2)
    assert.is_table(r1, m1)
    assert.are.equal(H.read(src .. "/big"), H.read(out .. "/big"))
    assert.are.same({ "big" }, H.ls(out))
  end)

  for _, len in ipairs { 224, 241 } do
    it(("keep the partial files of names of %d bytes that share their first 220 apart"):format(len), function()
      local a = ("n"):rep(220) .. ("a"):rep(len - 220)
      local b = ("n"):rep(220) .. ("b"):rep(len - 220)
      H.write_random(src .. "/" .. a, 4 * MiB)
      H.write_random(src .. "/" .. b, 64 * 1024)
      local started = false
      local ga = get(a, { limit_rate = MiB, on_start = function() started = true end })
      drive({ ga }, function() return started and ga:stats().bytes > 0 end)
      ga:abort() -- its partial file stays, to be resumed
      local d = assert(core.dir(out))
      local before = #d:scan()
      local gb = get(b)
      drive({ gb }, function() return gb.outcome ~= nil end)
      local res, msg = gb:result()
      gb:close()
      local after = {}
      for _, e in ipairs(d:scan()) do after[#after + 1] = e.path end
      d:close()
      assert.is_table(res, msg)
      assert.are.equal(1, before)
      assert.are.equal(2, #after, "a's partial file and b: " .. table.concat(after, " "))
    end)
  end

  it("hash no more of a partial file than the size offered, and count that work in the time", function()
    H.write_random(src .. "/f", 3 * MiB)
    -- A sparse partial file of 16 GiB whose first MiB is the file's.
    local partial = out .. "/.f.udpxfer-12345678"
    os.execute(("head -c %d %s > %s && truncate -s 16G %s"):format(MiB, q(src .. "/f"), q(partial), q(partial)))
    local t0 = core.now()
    local g = get("f")
    drive({ g }, function() return g.outcome ~= nil end)
    local wall = core.now() - t0
    local res, msg = g:result()
    local st = g:stats()
    g:close()
    assert.is_table(res, msg)
    assert.are.equal(H.read(src .. "/f"), H.read(out .. "/f"))
    assert.is_true(st.reused >= MiB, "the partial file's MiB reused: " .. st.reused)
    assert.is_true(wall < 3, ("took %.2f s, elapsed says %.3f s"):format(wall, res.elapsed))
    assert.is_true(res.elapsed >= wall - 0.1, ("elapsed %.3f s of %.3f s"):format(res.elapsed, wall))
    assert.are.same({ "f" }, H.ls(out))
  end)
end)

describe("sync and udpxfer's own names", function()
  local root, dst

  before_each(function()
    root = H.tmpdir()
    dst = root .. "/dst"
    os.execute("mkdir " .. q(dst))
  end)
  after_each(function() H.rmrf(root) end)

  local SHA = core.sha256("x")
  local function file(path) return ("f\t644\t0\t1\t%s\t%s"):format(SHA, path) end

  local function own_entries(dir)
    local d = assert(core.dir(dir))
    local t = {}
    for _, e in ipairs(assert(d:scan())) do if e.own then t[e.path] = e.type end end
    d:close()
    return t
  end

  it("leaves entries named like temporary files alone unless they are stale files of listed names", function()
    H.write(dst .. "/a", "x")
    os.execute("touch -d @0 " .. q(dst .. "/a")) -- a is in place: not fetched
    os.execute(("mkdir %s && echo keep > %s"):format(q(dst .. "/.photos.udpxfer-12345678"),
      q(dst .. "/.photos.udpxfer-12345678/p.jpg")))
    os.execute("ln -s a " .. q(dst .. "/.lnk.udpxfer-abcdef01"))
    H.write(dst .. "/.notes.udpxfer-deadbeef", "mine")
    H.write(dst .. "/.a.udpxfer-11111111", "stale")
    H.write(dst .. "/.b.udpxfer-22222222", "x")
    local text = H.listing({ file("a"), file("b") })
    local res, msg = H.sync_listing(dst, text, { b = "x" })
    assert.is_table(res, msg)
    assert.are.equal("x", H.read(dst .. "/b"))
    assert.are.same({ [".photos.udpxfer-12345678"] = "dir", [".lnk.udpxfer-abcdef01"] = "link",
      [".notes.udpxfer-deadbeef"] = "file" }, own_entries(dst),
      "the stale partial of a and b's partial (resumed) went, the rest stays")
    assert.are.equal("keep\n", H.read(dst .. "/.photos.udpxfer-12345678/p.jpg"))
    res, msg = H.sync_listing(dst, text, { b = "x" }, { delete = true })
    assert.is_table(res, msg)
    assert.are.same({ [".photos.udpxfer-12345678"] = "dir", [".lnk.udpxfer-abcdef01"] = "link" }, own_entries(dst),
      "with delete, a file so named that the listing lacks goes too; folders and links stay")
  end)

  it("skips entries a listing names as udpxfer's own files, which no server lists", function()
    local text = H.listing({
      "d\t755\t0\t.d.udpxfer-abcdef01", file(".d.udpxfer-abcdef01/f"), file(".udpxfer-index"),
      file(".x.udpxfer-12345678"), file("a"),
    })
    local files = { a = "x", [".x.udpxfer-12345678"] = "x", [".udpxfer-index"] = "x", [".d.udpxfer-abcdef01/f"] = "x" }
    local res, msg, _, events = H.sync_listing(dst, text, files)
    assert.is_table(res, msg)
    local skipped = {}
    for _, ev in ipairs(events) do if ev.action == "skip" then skipped[#skipped + 1] = ev.path end end
    table.sort(skipped)
    assert.are.same({ ".d.udpxfer-abcdef01", ".udpxfer-index", ".x.udpxfer-12345678" }, skipped)
    assert.are.same({}, own_entries(dst))
    assert.are.same({ ".udpxfer-index", "a" }, H.ls(dst))
    local again = H.sync_listing(dst, text, files)
    assert.are.equal(0, again.changed)
    assert.are.equal(0, again.checked, "the index is udpxfer's own, and vouches for a")
  end)
end)

describe("sync and a local index that is not a file", function()
  local root, src, dst, pid, port, pipe

  setup(function()
    root = H.tmpdir()
    src = root .. "/src"
    os.execute("mkdir " .. q(src))
    H.write(src .. "/a", "alpha\n")
    pid, port, pipe = H.start_server(src, nil, nil, true)
  end)
  teardown(function()
    H.kill(pid)
    pipe:close()
    H.rmrf(root)
  end)

  local function sync(dir)
    -- timeout: a sync that waits on the FIFO for ever ignores SIGTERM too
    return H.run(("timeout -k 1 10 %s sync . %s --server 127.0.0.1:%d --broadcast none"):format(H.UDPXFER, q(dir), port))
  end

  for _, case in ipairs { { "a FIFO", "mkfifo" }, { "a folder", "mkdir" } } do
    it("syncs with " .. case[1] .. " at DIR/.udpxfer-index, every time: one warning, and it stays", function()
      dst = root .. "/" .. case[2]
      os.execute(("mkdir %s && %s %s"):format(q(dst), case[2], q(dst .. "/.udpxfer-index")))
      for run = 1, 2 do
        local code, _, err = sync(dst)
        assert.are.equal(0, code, ("run %d: %s"):format(run, err))
        local _, n = err:gsub("%.udpxfer%-index: not a regular file", "")
        assert.are.equal(1, n, err)
      end
      assert.are.equal("alpha\n", H.read(dst .. "/a"))
      assert.are.equal(case[2] == "mkfifo" and "fifo" or "directory",
        H.sh("stat -c %F " .. q(dst .. "/.udpxfer-index")):match("%a+"))
    end)
  end
end)
