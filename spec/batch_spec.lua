-- Batches (wire version 5): files of a verified listing asked for as one
-- transfer (REQUEST kind 2 with a selection; one OFFER for the files laid
-- end to end; bare DATA, each file checked whole against the listing's
-- SHA-256). Sim engines over the simulated link, seeded: loss, reordering,
-- duplication, corruption, servers that vanish, lie or whose folder
-- changes, and selections at their limits.
local H = require "spec.helper"
local core = H.core

local ADDRS = { "10.0.0.1:10526", "10.0.0.3:10526", "10.0.0.4:10526" }
local ATTACKER = "10.0.0.66:5000"
local CHUNK = 2048

-- Files of every shape a layout has: empty, shorter than a chunk, whole
-- chunks, a byte over, several chunks (f01..f24, numbers 0-23); a large
-- one (over the 1 MiB a batch gathers in memory: it goes through a sink of
-- its own, number 24); more small ones after it (z/t1..z/t6, 25-30).
local CONTENT = {}
do
  local sizes = { 0, 1, 100, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 5000, 12000, 20000 }
  for i = 1, 24 do CONTENT[("f%02d"):format(i)] = H.bytes(sizes[(i - 1) % #sizes + 1], i) end
  local base, blocks = H.bytes(65536, 99), {}
  for i = 1, 21 do blocks[i] = (">I4"):pack(i) .. base:sub(5) end
  CONTENT["m/big"] = table.concat(blocks) .. "tail!"
  for i = 1, 6 do CONTENT[("z/t%d"):format(i)] = H.bytes(700 * i, 100 + i) end
end
local BIG = "m/big"

-- Sim servers (O.servers copies of O.content, default CONTENT, with the
-- same mtimes: one listing), an output folder and the listing's files.
-- O.server_opts[i]: more options for server i.
local function new_env(o)
  o = o or {}
  local env = { dir = H.tmpdir(), servers = {}, addrs = {}, content = o.content or CONTENT }
  env.out = env.dir .. "/out"
  for i = 1, o.servers or 1 do
    env.src = env.src or {}
    env.src[i] = env.dir .. "/srv" .. i
    H.folder(env.src[i], env.content)
    local so = { dir = env.src[i], sim = true, seed = i }
    for k, v in pairs(o.server_opts and o.server_opts[i] or {}) do so[k] = v end
    env.servers[ADDRS[i]] = assert(core.server(so))
    env.addrs[i] = ADDRS[i]
  end
  os.execute("mkdir -p " .. env.out .. "/m " .. env.out .. "/z")
  env.root = assert(core.dir(env.out))
  env.listing, env.files = H.sim_listing(env.servers, ADDRS[1], { chunk_size = CHUNK })
  return env
end

local function teardown_env(env)
  for _, s in pairs(env.servers) do s:close() end
  env.root:close()
  H.rmrf(env.dir)
end

-- A sim batch of ENV's files (O: files, listing, targets, seed,
-- idle_timeout, discover_timeout).
local function batch(env, o)
  o = o or {}
  return assert(core.batch { remote = ".", listing = o.listing or env.listing, root = env.root,
    files = o.files or env.files, sim = true, targets = o.targets or env.addrs, seed = o.seed or 1,
    chunk_size = CHUNK, idle_timeout = o.idle_timeout, discover_timeout = o.discover_timeout })
end

-- Batch B over the simulated link (O: H.simulate's options). Returns the
-- final event, each file's result by path, every event, link counters.
local function run(env, b, o)
  local so = { client = b, servers = env.servers, max_time = 300 }
  for k, v in pairs(o or {}) do so[k] = v end
  local final, events, st = H.simulate(so)
  local results = {}
  for _, ev in ipairs(events) do
    if ev.type == "file" then
      assert.is_nil(results[ev.path], "one result per file")
      results[ev.path] = ev
    end
  end
  return final, results, events, st
end

-- What a batch left: each file reported in place holds its listed bytes
-- and mtime, each other one is absent under its name, and beside them lie
-- only partial files of the large one (kept to resume). Returns those.
local function check_out(env, results)
  for _, f in ipairs(env.files) do
    local r = assert(results[f.path], "no result for " .. f.path)
    local got = H.read(env.out .. "/" .. f.path)
    if r.ok then
      assert.is_true(got == env.content[f.path], f.path .. " holds its listed bytes")
      assert.are.equal(f.mtime, r.stat.mtime)
      assert.are.equal(f.size, r.stat.size)
    else
      assert.is_nil(got, ("%s failed (%s) and is not under its name"):format(f.path, r.code))
    end
  end
  local partials = {}
  for line in H.sh("cd " .. env.out .. " && find . -type f | sort"):gmatch("[^\n]+") do
    local p = line:sub(3)
    if not env.content[p] then
      assert.matches("^m/" .. core.partial_prefix("big"):gsub("%p", "%%%0") .. "%x+$", p)
      partials[#partials + 1] = p
    end
  end
  return partials
end

local function count(results, pred)
  local n = 0
  for _, r in pairs(results) do n = n + (pred(r) and 1 or 0) end
  return n
end

local function ok(r) return r.ok end

-- DATA datagrams from a server: a filter counting them, calling
-- AT[n](now) at the nth.
local function on_data(at)
  local n = 0
  return function(pkt, from, _, now)
    if pkt:byte(4) == H.TYPE.DATA and from ~= "10.0.0.2:40000" then
      n = n + 1
      if at[n] then at[n](now) end
    end
    return pkt
  end
end

-- Fetch file F alone from ENV's servers, every chunk checked against the
-- tree's leaf (what a sync does with a file of a batch that failed its check).
local function fetch_alone(env, f, o)
  o = o or {}
  local c = assert(core.client { name = f.path, sha256 = f.sha256, root = env.root, path = f.path, mode = f.mode,
    mtime = f.mtime, verify = true, durable = false, targets = env.addrs, unicast = true, sim = true,
    chunk_size = CHUNK, seed = o.seed })
  local final, events = H.simulate { client = c, servers = env.servers, link = o.link, seed = o.seed, max_time = 300 }
  c:close()
  return final, events
end

describe("a batch over a bad link", function()
  local env
  before_each(function() env = new_env() end)
  after_each(function() teardown_env(env) end)

  for _, case in ipairs {
    { "20% loss", { loss = 0.2 }, 1 },
    { "reordering and duplication", { reorder = 0.5, dup = 0.3 }, 2 },
    { "loss, reordering, duplication and truncation together", { loss = 0.1, reorder = 0.3, dup = 0.2,
      truncate = 0.05 }, 3 },
  } do
    it("lands every file verified through " .. case[1], function()
      local b = batch(env, { seed = case[3] })
      local final, results, _, st = run(env, b, { link = case[2], seed = case[3] })
      local stats = b:stats()
      b:close()
      assert.are.equal("done", final and final.type, final and final.message)
      assert.are.equal(#env.files, count(results, ok))
      assert.are.same({}, check_out(env, results))
      if case[2].loss then assert.is_true(st.dropped > 0 and stats.servers[1].lost > 0, "losses were recovered") end
      if case[2].dup then assert.is_true(st.dup > 0 and stats.dups > 0, "duplicates came and were counted once") end
      assert.are.equal(stats.chunks, stats.have)
    end)
  end

  it("never puts corrupted bytes under a file's name; fetched again alone, every file lands", function()
    -- Batch chunks travel bare: a damaged one is caught by its file's
    -- SHA-256 (code corrupt), and that file alone is fetched again with
    -- every chunk checked against its leaf.
    local link = { corrupt = 0.03 }
    local b = batch(env, { seed = 4 })
    local final, results, _, st = run(env, b, { link = link, seed = 4 })
    b:close()
    assert.is_true(st.corrupt > 0)
    assert.are.equal("done", final and final.type, final and final.message)
    check_out(env, results)
    local failed = {}
    for _, f in ipairs(env.files) do
      local r = results[f.path]
      if not r.ok then
        assert.are.equal("corrupt", r.code, r.message)
        failed[#failed + 1] = f
      end
    end
    assert.is_true(#failed > 0, "some files took a damaged chunk")
    assert.is_true(results[BIG].code == "corrupt", "the large one too")
    for i, f in ipairs(failed) do
      local fin = fetch_alone(env, f, { link = link, seed = 10 + i })
      assert.are.equal("done", fin and fin.type, fin and fin.message)
      results[f.path] = { ok = true, stat = env.root:stat(f.path) }
    end
    assert.are.same({}, check_out(env, results))
  end)
end)

describe("a server that vanishes mid-batch", function()
  it("with a second server, the batch finishes from it", function()
    local env = new_env { servers = 2 }
    finally(function() teardown_env(env) end)
    local b = batch(env, { seed = 5 })
    -- 1 MB/s each: the first's silence outlasts its round-trip timeouts
    local o = { kill = {}, seed = 5, rates = { [ADDRS[1]] = 1e6, [ADDRS[2]] = 1e6 } }
    o.filter = on_data { [300] = function() o.kill[ADDRS[1]] = 0 end }
    local final, results, events = run(env, b, o)
    local stats = b:stats()
    b:close()
    assert.are.equal("done", final and final.type, final and final.message)
    assert.are.equal(#env.files, count(results, ok))
    assert.are.same({}, check_out(env, results))
    local dropped = {}
    for _, ev in ipairs(events) do
      if ev.type == "drop" then dropped[#dropped + 1] = { ev.server, ev.reason } end
    end
    assert.are.same({ { ADDRS[1], "silent" } }, dropped)
    local by = {}
    for _, sv in ipairs(stats.servers) do by[sv.server] = sv end
    local a, b2 = by[ADDRS[1]], by[ADDRS[2]]
    assert.is_true(a.chunks > 0 and a.chunks < 300, "the first sent part before it vanished: " .. a.chunks)
    assert.are.equal(stats.chunks, a.chunks + b2.chunks, "the second sent the rest")
  end)

  -- Killed while the small files in front stream (some whole, some part
  -- way), or in the large one's middle (the small ones done).
  for _, case in ipairs { { "among the small files", 40 }, { "in the large file", 400 } } do
    it("alone, fails the rest 'timeout' " .. case[1] .. ": files done stay, the others leave nothing under their names", function()
      local env = new_env()
      finally(function() teardown_env(env) end)
      local b = batch(env, { seed = 6, idle_timeout = 2, discover_timeout = 2 })
      local o = { kill = {}, seed = 6 }
      o.filter = on_data { [case[2]] = function() o.kill[ADDRS[1]] = 0 end }
      local final, results = run(env, b, o)
      b:close()
      assert.are.equal("error", final and final.type)
      assert.are.equal("timeout", final.code)
      assert.matches("every server stopped answering", final.message)
      local done, failed = count(results, ok), count(results, function(r) return r.code == "timeout" end)
      assert.is_true(done > 0, "some files were done")
      assert.are.equal(#env.files, done + failed, "the others failed 'timeout'")
      local partials = check_out(env, results)
      assert.is_false(results[BIG].ok)
      assert.are.equal(1, #partials, "what came of the large file is kept to resume")
      if case[2] > 200 then
        assert.is_true(results["f24"].ok, "the small files in front were done")
      else
        assert.are.equal("timeout", results["f24"].code, "small files were still coming")
      end
    end)
  end
end)

describe("a batch whose listing changes on the server", function()
  -- Every file on server I replaced by another (new bytes and mtime, a
  -- rename over it): those it has open still read as listed, the others
  -- have changed since the listing (and are not hashed yet).
  local function rewrite(env, i)
    for path in pairs(CONTENT) do
      local p = env.src[i] .. "/" .. path
      H.write(p .. ".new", "changed: " .. path)
      os.execute("touch -d @1700000100 " .. p .. ".new")
      assert(os.rename(p .. ".new", p))
    end
  end

  it("is answered stale: the files not in place fail 'stale', and nothing changed is written", function()
    -- z/t6 replaced, and hashed anew by the server for another host's
    -- request before its first chunk is read: it is not the listed version.
    local env = new_env()
    finally(function() teardown_env(env) end)
    local b = batch(env, { seed = 7 })
    local stale = 0
    local data = on_data { [1] = function(now)
      local p = env.src[1] .. "/z/t6"
      H.write(p .. ".new", "changed: z/t6")
      os.execute("touch -d @1700000100 " .. p .. ".new")
      assert(os.rename(p .. ".new", p))
      env.servers[ADDRS[1]]:input(H.wire.request(77, "z/t6", CHUNK), ATTACKER, now)
    end }
    local final, results = run(env, b, { seed = 7, filter = function(pkt, from, to, now)
      local m = H.wire.decode(pkt)
      if m.type == H.TYPE.ERROR and m.code == 3 then stale = stale + 1 end
      if to == ATTACKER then assert.are.equal(H.TYPE.OFFER, m.type, "the new version was hashed") end
      return data(pkt, from, to, now)
    end })
    b:close()
    assert.are.equal(1, stale, "the server said stale")
    assert.are.equal("error", final and final.type)
    assert.are.equal("stale", final.code)
    assert.are.equal("stale", results["z/t6"].code)
    local done = count(results, ok)
    assert.is_true(done > 0, "the files done before stay")
    assert.are.equal(#env.files, done + count(results, function(r) return r.code == "stale" end))
    check_out(env, results)
  end)

  it("from one server of two: that one is dropped 'stale', the batch finishes from the other", function()
    local env = new_env { servers = 2 }
    finally(function() teardown_env(env) end)
    local b = batch(env, { seed = 8 })
    local final, results, events = run(env, b, { seed = 8, filter = on_data { [1] = function() rewrite(env, 1) end } })
    b:close()
    assert.are.equal("done", final and final.type, final and final.message)
    assert.are.equal(#env.files, count(results, ok))
    assert.are.same({}, check_out(env, results))
    local dropped
    for _, ev in ipairs(events) do
      if ev.type == "drop" then dropped = { ev.server, ev.reason } end
    end
    assert.are.same({ ADDRS[1], "stale" }, dropped)
  end)

  it("changed after its listing was fetched: the request is answered stale and every file fails 'stale'", function()
    local env = new_env()
    finally(function() teardown_env(env) end)
    H.write(env.src[1] .. "/new", "a file the listing lacks")
    local b = batch(env, { seed = 9 })
    local final, results = run(env, b, { seed = 9 })
    b:close()
    assert.are.equal("stale", final and final.code)
    assert.matches("changed on the server since its listing", final.message)
    for _, f in ipairs(env.files) do
      -- an empty file needs no server: the listing, verified, says what it is
      assert.are.equal(f.size == 0 or "stale", results[f.path].ok or results[f.path].code, f.path)
    end
    assert.are.same({}, check_out(env, results))
  end)

  it("a large file rewritten in place after its first chunk went out fails its SHA-256: nothing wrong under its name", function()
    -- The server reads it through the descriptor it opened: the bytes
    -- change under a session and the batch's bare chunks carry them; the
    -- file's own check catches it (code corrupt, its partial file gone).
    local env = new_env()
    finally(function() teardown_env(env) end)
    local b = batch(env, { seed = 10 })
    local changed = CONTENT[BIG]:sub(1, 500000) .. ("X"):rep(1000) .. CONTENT[BIG]:sub(501001)
    local final, results = run(env, b, { seed = 10, filter = on_data { [150] = function()
      local f = assert(io.open(env.src[1] .. "/" .. BIG, "r+b"))
      f:write(changed)
      f:close()
    end } })
    b:close()
    assert.are.equal("done", final and final.type, final and final.message)
    assert.are.equal("corrupt", results[BIG].code)
    assert.matches("SHA%-256", results[BIG].message)
    assert.are.equal(#env.files - 1, count(results, ok))
    assert.are.same({}, check_out(env, results), "its partial file is removed")
  end)
end)

describe("a batch fed by several servers", function()
  it("splits its chunks among three servers, each sending a share", function()
    local env = new_env { servers = 3 }
    finally(function() teardown_env(env) end)
    local b = batch(env, { seed = 11 })
    local final, results = run(env, b, { seed = 11, link = { loss = 0.05 } })
    local stats = b:stats()
    b:close()
    assert.are.equal("done", final and final.type, final and final.message)
    assert.are.equal(#env.files, count(results, ok))
    assert.are.same({}, check_out(env, results))
    assert.are.equal(3, #stats.servers)
    local sum = 0
    for _, s in ipairs(stats.servers) do
      assert.is_true(s.chunks > 0, s.server .. " sent a share")
      sum = sum + s.chunks
    end
    assert.are.equal(stats.chunks, sum)
  end)

  it("a server sending wrong bytes costs its files a failed check, never a wrong file; alone, every file lands", function()
    -- Its chunks' hashes would match (it lies before hashing), but a
    -- batch's chunks go bare: each file it touched fails its SHA-256
    -- ('corrupt'); fetched again alone, every chunk checked against its
    -- leaf, the liar is caught at its first chunk and dropped.
    local env = new_env { servers = 2, server_opts = { [2] = { lie_percent = 100 } } }
    finally(function() teardown_env(env) end)
    local b = batch(env, { seed = 12 })
    local final, results = run(env, b, { seed = 12 })
    local stats = b:stats()
    b:close()
    assert.are.equal("done", final and final.type, final and final.message)
    check_out(env, results)
    assert.is_true(stats.servers[1].chunks > 0 and stats.servers[2].chunks > 0, "both fed the batch")
    local failed = {}
    for _, f in ipairs(env.files) do
      local r = results[f.path]
      if not r.ok then
        assert.are.equal("corrupt", r.code)
        failed[#failed + 1] = f
      end
    end
    assert.is_true(#failed > 0 and #failed < #env.files, #failed .. " files took the liar's bytes")
    local caught = 0
    for i, f in ipairs(failed) do
      local fin, events = fetch_alone(env, f, { seed = 20 + i })
      assert.are.equal("done", fin and fin.type, fin and fin.message)
      for _, ev in ipairs(events) do
        if ev.type == "drop" and ev.server == ADDRS[2] and ev.reason == "corrupt" then caught = caught + 1 end
      end
      results[f.path] = { ok = true, stat = env.root:stat(f.path) }
    end
    assert.is_true(caught > 0, "the liar was dropped")
    assert.are.same({}, check_out(env, results))
  end)
end)

describe("a batch's selection at its limits", function()
  local CLIENT = "10.0.0.2:40000"
  local MANY = {} -- 250 files n000..n249 (numbers 0-249), every seventh empty
  for i = 0, 249 do MANY[("n%03d"):format(i)] = ("file %d;"):format(i):rep(i % 7 * 40) end
  local env, server, listing, now, xid

  lazy_setup(function()
    env = new_env { content = MANY }
    server = env.servers[ADDRS[1]]
    listing = H.unhex(env.listing)
  end)
  lazy_teardown(function() teardown_env(env) end)
  before_each(function() now, xid = (now or 0) + 1, (xid or 100) + 100 end)

  -- A REQUEST for SEL (or a selection of RANGES) from CLIENT: the replies.
  local function ask(ranges, sel, sel_len)
    xid = xid + 1
    now = now + 0.01
    server:input(H.wire.files_request(xid, ".", CHUNK, sel or H.wire.selection(listing, ranges), sel_len), CLIENT, now)
    local out = {}
    for pkt in function() return (server:output(now)) end do out[#out + 1] = H.wire.decode(pkt) end
    return out
  end

  local function error_code(ranges, sel, sel_len)
    local r = ask(ranges, sel, sel_len)
    assert.are.equal(1, #r)
    assert.are.equal(H.TYPE.ERROR, r[1].type)
    return r[1].code
  end

  -- Files N of the listing laid end to end, each from a chunk boundary.
  local function chunks_of(numbers)
    local t = {}
    for _, n in ipairs(numbers) do
      local data = MANY[("n%03d"):format(n)]
      for at = 1, #data, CHUNK do t[#t + 1] = data:sub(at, at + CHUNK - 1) end
    end
    return t
  end

  it("ranges of file numbers are offered as one transfer, the files laid end to end, chunks bare", function()
    local ranges = { { 0, 3 }, { 5, 2 }, { 12, 1 } }
    local numbers = { 0, 1, 2, 5, 6, 12 }
    local size = 0
    for _, n in ipairs(numbers) do size = size + #MANY[("n%03d"):format(n)] end
    local want = chunks_of(numbers)
    local o = ask(ranges)[1]
    assert.are.equal(H.TYPE.OFFER, o.type)
    assert.are.same({ size, CHUNK, #want }, { o.size, o.chunk_size, o.chunks })
    -- its SHA-256 names the selection at this chunk size
    local digest = core.sha256("udpxfer files" .. (">I4"):pack(CHUNK) .. H.wire.selection(listing, ranges))
    assert.are.equal(H.unhex(digest), o.sha256)
    server:input(H.wire.need(xid, o.handle, CHUNK, o.cookie, 1, { { 0, #want } }), CLIENT, now)
    local got = {}
    for pkt in function() return (server:output(now)) end do
      local m = H.wire.decode(pkt)
      assert.are.equal(H.TYPE.DATA, m.type)
      assert.are.equal(H.FLAG_BARE, m.flags)
      got[m.index + 1] = m.data
    end
    assert.are.same(want, got)
    server:input(H.wire.close(xid), CLIENT, now)
  end)

  it("an empty selection is refused", function()
    assert.are.equal(2, error_code({}))
  end)

  it("120 ranges are served, 121 refused; a batch's files making 121 ranges are not sent", function()
    local ranges = {}
    for i = 0, 119 do ranges[#ranges + 1] = { 2 * i, 1 } end
    local o = ask(ranges)[1]
    assert.are.equal(H.TYPE.OFFER, o.type)
    local numbers = {}
    for i = 0, 119 do numbers[#numbers + 1] = 2 * i end
    assert.are.equal(#chunks_of(numbers), o.chunks)
    ranges[#ranges + 1] = { 240, 1 }
    assert.are.equal(2, error_code(ranges))
    local files = {}
    for i = 0, 120 do files[#files + 1] = env.files[2 * i + 1] end
    local b, msg, code = core.batch { remote = ".", listing = env.listing, root = env.root, files = files, sim = true,
      targets = env.addrs }
    assert.is_nil(b)
    assert.are.equal("usage", code)
    assert.matches("more than 120 ranges", msg)
  end)

  it("numbers past the listing's files are not found; a range past 2^32 is refused", function()
    assert.are.equal(1, error_code({ { 249, 2 } }))
    assert.are.equal(1, error_code({ { 0, 3 }, { 1000, 1 } }))
    assert.are.equal(2, error_code({ { 1, 0xffffffff } }))
  end)

  for _, case in ipairs {
    { "overlapping", { { 0, 5 }, { 3, 2 } } },
    { "touching", { { 0, 3 }, { 3, 2 } } },
    { "unsorted", { { 5, 1 }, { 0, 1 } } },
    { "repeated", { { 4, 1 }, { 4, 1 } } },
    { "empty", { { 0, 2 }, { 7, 0 } } },
  } do
    it(case[1] .. " ranges are refused: a selection has one spelling", function()
      assert.are.equal(2, error_code(case[2]))
    end)
  end

  it("a selection of another listing than the folder's is stale", function()
    assert.are.equal(3, error_code(nil, H.wire.selection(("\1"):rep(32), { { 0, 1 } })))
  end)

  it("a selection cut short is refused; one whose length runs past the datagram is dropped", function()
    local sel = H.wire.selection(listing, { { 0, 1 }, { 3, 1 } })
    assert.are.equal(2, error_code(nil, sel:sub(1, -9), #sel - 8))
    local before = server:stats().malformed
    assert.are.same({}, ask(nil, sel, 2000))
    assert.are.equal(before + 1, server:stats().malformed)
  end)

  it("a batch's files must come with their numbers going up", function()
    local b, msg, code = core.batch { remote = ".", listing = env.listing, root = env.root,
      files = { env.files[3], env.files[2] }, sim = true, targets = env.addrs }
    assert.is_nil(b)
    assert.are.equal("usage", code)
    assert.matches("must go up", msg)
  end)
end)

describe("the server's batches", function()
  -- At the 20th DATA, another host asks for fifteen other selections,
  -- then for the SIXTEENTH (a server keeps sixteen batches).
  local function crowd(env, sixteenth)
    return on_data { [20] = function(now)
      local server, listing = env.servers[ADDRS[1]], H.unhex(env.listing)
      for i = 1, 15 do
        server:input(H.wire.files_request(1000 + i, ".", CHUNK, H.wire.selection(listing, { { i, 1 } })), ATTACKER, now)
      end
      server:input(H.wire.files_request(2000, ".", CHUNK, H.wire.selection(listing, sixteenth)), ATTACKER, now)
    end }
  end

  it("a request that fails evicts none: the batch under way finishes", function()
    local env = new_env()
    finally(function() teardown_env(env) end)
    local b = batch(env, { seed = 13 })
    local final, results = run(env, b, { seed = 13, filter = crowd(env, { { 0, 500 } }) })
    b:close()
    assert.are.equal("done", final and final.type, final and final.message)
    assert.are.equal(#env.files, count(results, ok))
    assert.are.same({}, check_out(env, results))
  end)

  it("one evicted by sixteen newer ones ends its session stale at the next chunk, and the server serves on", function()
    local env = new_env()
    finally(function() teardown_env(env) end)
    local b = batch(env, { seed = 14 })
    local final, results = run(env, b, { seed = 14, filter = crowd(env, { { 20, 1 } }) })
    b:close()
    assert.are.equal("stale", final and final.code, final and final.message)
    assert.is_true(count(results, ok) > 0)
    for _, r in pairs(results) do assert.is_true(r.ok or r.code == "stale", r.message) end
    check_out(env, results)
    os.execute(("cd %s && rm -rf f* m z && mkdir m z"):format(env.out))
    b = batch(env, { seed = 15 })
    final, results = run(env, b, { seed = 15 })
    b:close()
    assert.are.equal("done", final and final.type, final and final.message)
    assert.are.same({}, check_out(env, results))
  end)
end)
