-- A served tree that users keep changing while its server runs: random,
-- seeded sequences of changes (files and folders created, changed,
-- appended to, renamed, deleted, turned into each other; links; modes;
-- times), a `sync --delete` after every few, some of them racing further
-- changes; the mirror is compared with the tree by rsync after each round.
--
-- Bounded: UDPXFER_CHURN_ROUNDS (default 150) and UDPXFER_CHURN_SECONDS
-- (default 40), whichever ends first. UDPXFER_CHURN_SEED replays a run;
-- every failure message names the seed.
local H = require "spec.helper"

local q = H.shell_quote

local ROUNDS = tonumber(os.getenv("UDPXFER_CHURN_ROUNDS") or "") or 150
local SECONDS = tonumber(os.getenv("UDPXFER_CHURN_SECONDS") or "") or 40
local SEED = tonumber(os.getenv("UDPXFER_CHURN_SEED") or "") or os.time() % 1000000

local NAMES = { "a", "b", "c", "d1", "d2", "x y", "ünï", "-z", "e.txt", "f.log" }
local FILE_MODES = { 420, 384, 493, 416 } -- 0644 0600 0755 0640
local DIR_MODES = { 493, 448, 488 }       -- 0755 0700 0750

local function sh(fmt, ...)
  local ok = os.execute(fmt:format(...))
  assert(ok, "shell step failed: " .. fmt:format(...))
end

-- The tree as lists of relative paths by type.
local function entries(root)
  local d = assert(H.core.dir(root))
  local t = { file = {}, dir = {}, link = {}, all = {} }
  for _, e in ipairs(assert(d:scan())) do
    if not e.own and e.path ~= ".udpxfer-index" then
      t[e.type] = t[e.type] or {}
      table.insert(t[e.type], e.path)
      table.insert(t.all, e.path)
    end
  end
  d:close()
  for _, l in pairs(t) do table.sort(l) end
  return t
end

local function pick(list) return #list > 0 and list[math.random(#list)] or nil end

-- A folder of the tree ("" for the root) to put something new in.
local function some_dir(t)
  if math.random() < 0.4 then return "" end
  local d = pick(t.dir)
  return d and d .. "/" or ""
end

local function content(n)
  local b = {}
  for i = 1, n // 8 + 1 do b[i] = ("%08x"):format(math.random(0, 0x7fffffff)) end
  return table.concat(b):sub(1, n)
end

local function random_size()
  local r = math.random()
  return r < 0.1 and 0 or r < 0.8 and math.random(1, 4096) or math.random(4097, 300000)
end

-- One random change to the tree at ROOT; returns a word for the log.
local CHANGES = {
  function(root, t) -- create a file
    local p = some_dir(t) .. pick(NAMES) .. math.random(9)
    if t.dir[p] then return "skip" end
    os.execute(("rm -rf %s"):format(q(root .. "/" .. p)))
    H.write(root .. "/" .. p, content(random_size()))
    return "create " .. p
  end,
  function(root, t) -- rewrite a file in place, same size
    local p = pick(t.file)
    if not p then return "skip" end
    local f = assert(io.open(root .. "/" .. p, "r+b"))
    local size = f:seek("end")
    if size > 0 then
      f:seek("set", math.random(0, size - 1))
      f:write(content(math.min(64, size)):sub(1, 1 + math.random(0, 63)))
    end
    f:close()
    return "modify " .. p
  end,
  function(root, t) -- append
    local p = pick(t.file)
    if not p then return "skip" end
    local f = assert(io.open(root .. "/" .. p, "ab"))
    f:write(content(math.random(1, 20000)))
    f:close()
    return "append " .. p
  end,
  function(root, t) -- delete a file or link
    local p = pick(math.random() < 0.7 and t.file or t.link)
    if not p then return "skip" end
    os.remove(root .. "/" .. p)
    return "delete " .. p
  end,
  function(root, t) -- rename a file (maybe into another folder, maybe over another file)
    local p = pick(t.file)
    if not p then return "skip" end
    local to = some_dir(t) .. pick(NAMES) .. math.random(9)
    if to == p or p:sub(1, #to + 1) == to .. "/" then return "skip" end -- not over a folder holding it
    sh("rm -rf %s && mv -- %s %s", q(root .. "/" .. to), q(root .. "/" .. p), q(root .. "/" .. to))
    return "rename " .. p .. " -> " .. to
  end,
  function(root, t) -- a folder with contents
    local p = some_dir(t) .. "D" .. pick(NAMES) .. math.random(5)
    sh("rm -rf -- %s && mkdir -p -- %s/sub", q(root .. "/" .. p), q(root .. "/" .. p))
    for i = 1, math.random(0, 4) do H.write(("%s/%s/f%d"):format(root, p, i), content(random_size())) end
    if math.random() < 0.5 then H.write(("%s/%s/sub/g"):format(root, p), content(random_size())) end
    return "mkdir " .. p
  end,
  function(root, t) -- rename a folder with its contents
    local p = pick(t.dir)
    if not p then return "skip" end
    local to = some_dir(t) .. "R" .. pick(NAMES) .. math.random(5)
    if to == p or to:sub(1, #p + 1) == p .. "/" or p:sub(1, #to + 1) == to .. "/" then return "skip" end
    sh("rm -rf %s && mv -- %s %s", q(root .. "/" .. to), q(root .. "/" .. p), q(root .. "/" .. to))
    return "rename dir " .. p .. " -> " .. to
  end,
  function(root, t) -- delete a folder with its contents
    local p = pick(t.dir)
    if not p then return "skip" end
    sh("rm -rf -- %s", q(root .. "/" .. p))
    return "delete dir " .. p
  end,
  function(root, t) -- a file becomes a folder
    local p = pick(t.file)
    if not p then return "skip" end
    sh("rm -f -- %s && mkdir -- %s", q(root .. "/" .. p), q(root .. "/" .. p))
    H.write(root .. "/" .. p .. "/inside", content(random_size()))
    return "file to dir " .. p
  end,
  function(root, t) -- a folder becomes a file
    local p = pick(t.dir)
    if not p then return "skip" end
    sh("rm -rf -- %s", q(root .. "/" .. p))
    H.write(root .. "/" .. p, content(random_size()))
    return "dir to file " .. p
  end,
  function(root, t) -- a link to a sibling
    local dir = some_dir(t)
    local p = dir .. "L" .. pick(NAMES)
    local target = pick(NAMES) .. math.random(9)
    sh("rm -rf %s && ln -s -- %s %s", q(root .. "/" .. p), q(target), q(root .. "/" .. p))
    return "link " .. p .. " -> " .. target
  end,
  function(root, t) -- chmod
    if math.random() < 0.5 and #t.dir > 0 then
      local p = pick(t.dir)
      sh("chmod %o %s", DIR_MODES[math.random(#DIR_MODES)], q(root .. "/" .. p))
      return "chmod dir " .. p
    end
    local p = pick(t.file)
    if not p then return "skip" end
    sh("chmod %o %s", FILE_MODES[math.random(#FILE_MODES)], q(root .. "/" .. p))
    return "chmod " .. p
  end,
  function(root, t) -- an old time
    local p = pick(t.all)
    if not p then return "skip" end
    sh("touch -h -d @%d %s", math.random(1e9, 1.7e9), q(root .. "/" .. p))
    return "touch " .. p
  end,
}

local function change(root)
  return CHANGES[math.random(#CHANGES)](root, entries(root))
end

-- What rsync finds to do to make DST like SRC (nothing, when they match).
local function differences(src, dst)
  local _, out = H.run(("rsync -rlptnci --delete --exclude=/.udpxfer-index %s/ %s/"):format(q(src), q(dst)))
  return out
end

-- Each kind of change, on its own, to a tree a server has listed: ls, sync
-- and get see it at once, and the server lives through it.
local KINDS = {
  { "a file created", "echo new > d1/new" },
  { "a file rewritten", "echo changed > d1/f" },
  { "a file appended to", "echo more >> d1/f" },
  { "a file deleted", "rm d1/f" },
  { "a file renamed", "mv d1/f d1/g" },
  { "a file moved to another folder", "mv d1/f d2/f" },
  { "a folder with contents deleted", "rm -rf d1" },
  { "a folder with contents renamed", "mv d1 zz" },
  { "a folder replaced by a new one of the same name", "rm -rf d1 && mkdir d1 && echo fresh > d1/h" },
  { "a file turned into a folder", "rm top && mkdir top && echo in > top/in" },
  { "a folder turned into a file", "rm -rf d2 && echo now-a-file > d2" },
  { "a file deleted and another written", "rm top; echo x > d" },
  { "a link created", "ln -s d1/f link" },
  { "a link turned into a file", "ln -s top link2 && rm link2 && echo plain > link2" },
  { "a file's mode changed", "chmod 600 top" },
  { "a folder's mode changed", "chmod 700 d1" },
  { "a folder's time changed", "touch -d @1000000000 d1" },
}

describe("a served tree changed after a listing", function()
  local dir, pid, port, pipe

  before_each(function()
    dir = H.tmpdir()
    os.execute(("mkdir -p %s/src/d1/sub %s/src/d2 %s/dst %s/out"):format(q(dir), q(dir), q(dir), q(dir)))
    H.write(dir .. "/src/d1/f", "f\n")
    H.write(dir .. "/src/d1/sub/s", "s\n")
    H.write(dir .. "/src/d2/e", "e\n")
    H.write(dir .. "/src/top", "top\n")
    -- old times, so a folder whose time a change moves differs by seconds
    os.execute(("find %s -exec touch -h -d @1000000000 {} +"):format(q(dir .. "/src")))
    pid, port, pipe = H.start_server(dir .. "/src", "-q", nil, true)
  end)

  after_each(function()
    if pid then H.kill(pid) end
    if pipe then pipe:close() end
    H.rmrf(dir)
  end)

  local function udpx(args)
    return H.run(("%s %s --port %d --server 127.0.0.1 --broadcast none --timeout 5"):format(H.UDPXFER, args, port))
  end

  for _, kind in ipairs(KINDS) do
    it(("is listed, synced and served at once after %s"):format(kind[1]), function()
      assert.equal(0, (udpx("sync . " .. q(dir .. "/dst") .. " --delete -q")))
      assert.equal(0, (udpx("ls . --json")))
      assert(os.execute(("cd %s && %s"):format(q(dir .. "/src"), kind[2])))
      local rc, out, err = udpx("ls . --json")
      assert.equal(0, rc, err)
      assert.truthy(out:find('"type":"done"', 1, true))
      rc, _, err = udpx("sync . " .. q(dir .. "/dst") .. " --delete -q")
      assert.equal(0, rc, err)
      assert.equal("", differences(dir .. "/src", dir .. "/dst"))
      rc, _, err = udpx("get d2/e -o " .. q(dir .. "/out") .. " -q --force")
      if H.read(dir .. "/src/d2/e") then assert.equal(0, rc, err) end
      assert.equal(true, os.execute(("kill -0 %d"):format(pid)), "the server died")
    end)
  end
end)

describe("a served tree that changes while its server runs", function()
  local dir, pid, port, pipe

  before_each(function()
    dir = H.tmpdir()
    os.execute(("mkdir -p %s/src %s/dst"):format(q(dir), q(dir)))
    pid, port, pipe = H.start_server(dir .. "/src", "-q", nil, true)
  end)

  after_each(function()
    if pid then H.kill(pid) end
    if pipe then pipe:close() end
    H.rmrf(dir)
  end)

  local function alive() return os.execute(("kill -0 %d 2>/dev/null"):format(pid)) == true end

  local function sync_cmd()
    return ("%s sync . %s --delete -q --port %d --server 127.0.0.1 --broadcast none --timeout 5"):format(
      H.UDPXFER, q(dir .. "/dst"), port)
  end

  it("is mirrored exactly after every sync, and its server never dies (seeded)", function()
    if not H.sh("command -v rsync"):match("rsync") then
      pending("rsync is not installed: it is this test's oracle")
      return
    end
    math.randomseed(SEED)
    local log, started, raced, stale = {}, H.core.now(), 0, 0
    local function why(msg)
      return ("%s (UDPXFER_CHURN_SEED=%d replays it; last changes: %s)"):format(msg, SEED,
        table.concat(log, "; ", math.max(1, #log - 8)))
    end
    local rounds = 0
    while rounds < ROUNDS and H.core.now() - started < SECONDS do
      rounds = rounds + 1
      for _ = 1, math.random(1, 4) do log[#log + 1] = change(dir .. "/src") end
      if math.random() < 0.3 then
        -- a sync racing more changes: it may fail, only because the tree changed under it
        raced = raced + 1
        local p = assert(io.popen(sync_cmd() .. " --json 2>&1; echo \"exit=$?\""))
        local first = p:read("L") or "" -- the first file done: the sync is under way
        for _ = 1, math.random(1, 3) do log[#log + 1] = change(dir .. "/src") end
        local out = first .. p:read("a")
        p:close()
        local rc = tonumber(out:match("exit=(%d+)"))
        if rc ~= 0 then
          stale = stale + 1
          assert(rc == 4 and out:find("changed on the server", 1, true),
            why(("a sync racing changes failed otherwise than stale (exit %s): %s"):format(rc, out)))
        end
      end
      local rc, _, err = H.run(sync_cmd())
      assert(rc == 0, why(("sync failed with exit %s: %s"):format(rc, err)))
      assert(alive(), why("the server died"))
      local diff = differences(dir .. "/src", dir .. "/dst")
      assert(diff == "", why("the mirror differs from the tree:\n" .. diff))
    end
    assert(alive(), why("the server died"))
    assert.is_true(rounds >= 10, why(("only %d rounds ran"):format(rounds)))
    print(("churn: seed %d, %d rounds, %d changes, %d syncs raced changes (%d of them stale) in %.1f s")
      :format(SEED, rounds, #log, raced, stale, H.core.now() - started))
  end)
end)
