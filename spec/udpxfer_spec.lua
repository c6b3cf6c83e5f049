-- The Lua API over real sockets on loopback. Discovery goes to 127.0.0.1 or
-- 127.255.255.255 only: nothing leaves this host.
local H = require "spec.helper"
local udpxfer = H.udpxfer

describe("udpxfer over loopback", function()
  local dir, srv

  before_each(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
    srv = assert(udpxfer.serve { dir = dir .. "/srv", port = 0 })
  end)

  after_each(function()
    srv:close()
    H.rmrf(dir)
  end)

  local function get(name, extra)
    local opts = { name = name, out = dir .. "/out", port = srv:port(), broadcast = false,
      servers = { "127.0.0.1" }, timeout = 3 }
    for k, v in pairs(extra or {}) do opts[k] = v end
    return udpxfer.get(opts)
  end

  local function finish(g, limit)
    assert.is_true(H.drive({ g, srv }, function() return g.outcome ~= nil end, limit or 60))
    return g:result()
  end

  it("fetches a 20 MiB random file byte for byte", function()
    H.write_random(dir .. "/srv/big.bin", 20 * 1024 * 1024)
    local progress = 0
    local g = assert(get("big.bin", { on_progress = function() progress = progress + 1 end }))
    local res, err = finish(g)
    assert.is_table(res, err)
    assert.are.equal(dir .. "/out/big.bin", res.path)
    assert.are.equal(20 * 1024 * 1024, res.size)
    assert.are.equal(H.core.sha256_file(dir .. "/srv/big.bin"), res.sha256)
    assert.is_true(H.read(dir .. "/srv/big.bin") == H.read(dir .. "/out/big.bin"))
    assert.is_true(progress >= 1)
    assert.are.same({ "big.bin" }, H.ls(dir .. "/out"))
  end)

  it("waits on its descriptor while the file is checked, synced and renamed, not in a spin", function()
    H.write_random(dir .. "/srv/c.bin", 32 * 1024 * 1024)
    local g = assert(get("c.bin"))
    local step, committing = g.step, 0
    g.step = function(self)
      if self.obj:stats().state == "committing" then committing = committing + 1 end
      return step(self)
    end
    local res, err = finish(g)
    assert.is_table(res, err)
    assert.is_true(H.read(dir .. "/srv/c.bin") == H.read(dir .. "/out/c.bin"))
    -- a wake-up per slab the sink's thread had left to write, and the end
    assert.is_true(committing <= 40, committing .. " steps while committing")
  end)

  it("discovers the server by broadcast on 127.255.255.255", function()
    H.write(dir .. "/srv/x", "broadcast me")
    local g = assert(get("x", { servers = {}, broadcast = { "127.255.255.255" } }))
    local offers = 0
    g.opts.on_offer = function() offers = offers + 1 end
    local res, err = finish(g)
    assert.is_table(res, err)
    assert.are.equal("broadcast me", H.read(dir .. "/out/x"))
    assert.are.equal(1, offers)
  end)

  it("reports a missing file with a clear error and code", function()
    local g = assert(get("nothing-here"))
    local res, msg, code = finish(g)
    assert.is_nil(res)
    assert.are.equal("notfound", code)
    assert.matches("not found", msg)
    assert.are.same({}, H.ls(dir .. "/out"))
  end)

  it("reports a refused name", function()
    local g = assert(get("../../etc/passwd"))
    local res, msg, code = finish(g)
    assert.is_nil(res)
    assert.are.equal("refused", code)
    assert.matches("refused", msg)
  end)

  it("serves the next client after a malformed datagram", function()
    H.write(dir .. "/srv/ok", "still serving")
    os.execute(("bash -c 'printf \"UX-garbage\" > /dev/udp/127.0.0.1/%d'"):format(srv:port()))
    assert.is_true(H.drive({ srv }, function() return srv:stats().malformed >= 1 end, 5))
    local res = finish(assert(get("ok")))
    assert.is_table(res)
    assert.are.equal("still serving", H.read(dir .. "/out/ok"))
  end)

  it("serves many clients at once", function()
    for i = 1, 4 do H.write_random(dir .. "/srv/f" .. i, 300000 + i) end
    local gets = {}
    for i = 1, 4 do gets[i] = assert(get("f" .. i)) end
    local objs = { srv, table.unpack(gets) }
    assert.is_true(H.drive(objs, function()
      for _, g in ipairs(gets) do if not g.outcome then return false end end
      return true
    end, 60))
    for i = 1, 4 do
      assert.is_table(gets[i]:result())
      assert.is_true(H.read(dir .. "/srv/f" .. i) == H.read(dir .. "/out/f" .. i))
    end
  end)

  it("drives two transfers from two coroutines in one plain loop, with yielding callbacks", function()
    H.write_random(dir .. "/srv/one", 2 * 1024 * 1024)
    H.write_random(dir .. "/srv/two", 3 * 1024 * 1024)
    local log = {}
    local function transfer(name)
      return coroutine.create(function()
        local g = assert(get(name, {
          on_progress = function(st)
            coroutine.yield("progress") -- a callback may yield to the loop
            log[#log + 1] = name .. " " .. st.bytes
          end,
          on_done = function(ev) log[#log + 1] = name .. " done " .. ev.size end,
        }))
        while not g:step() do coroutine.yield(g) end
        return g:result()
      end)
    end
    local cos, waiting, results = { transfer("one"), transfer("two") }, {}, {}
    local deadline = H.core.now() + 60
    while (cos[1] or cos[2]) and H.core.now() < deadline do
      local fds, timeout = { srv:pollfd(), srv:events() }, srv:timeout() or 0.05
      srv:step()
      for i = 1, 2 do
        local co = cos[i]
        if co then
          local ok, v = coroutine.resume(co)
          assert(ok, v)
          if coroutine.status(co) == "dead" then
            results[i], cos[i] = v, nil
          elseif type(v) == "table" then
            waiting[i] = v
            fds[#fds + 1] = v:pollfd()
            fds[#fds + 1] = v:events()
            timeout = math.min(timeout, v:timeout() or 0.05)
          else
            timeout = 0 -- yielded from a callback: resume it promptly
          end
        end
      end
      if cos[1] or cos[2] then H.core.poll(fds, timeout) end
    end
    assert.is_table(results[1])
    assert.is_table(results[2])
    assert.is_true(H.read(dir .. "/srv/one") == H.read(dir .. "/out/one"))
    assert.is_true(H.read(dir .. "/srv/two") == H.read(dir .. "/out/two"))
    local done = 0
    for _, l in ipairs(log) do if l:match("done") then done = done + 1 end end
    assert.are.equal(2, done)
  end)

  it("replaces an existing file only once the new one is verified", function()
    H.write(dir .. "/srv/v", "new version")
    H.write(dir .. "/out/v", "old version")
    local res = finish(assert(get("v")))
    assert.is_table(res)
    assert.are.equal("new version", H.read(dir .. "/out/v"))
    assert.are.same({ "v" }, H.ls(dir .. "/out"))
  end)

  it("removes the partial file when a transfer is closed early", function()
    H.write_random(dir .. "/srv/big", 8 * 1024 * 1024)
    local g = assert(get("big"))
    assert.is_true(H.drive({ g, srv }, function() return g:stats().bytes > 0 end, 20))
    g:close()
    g:close() -- idempotent
    assert.are.same({}, H.ls(dir .. "/out"))
    local res, _, code = g:result()
    assert.is_nil(res)
    assert.are.equal("closed", code)
  end)

  it("fails at once with an I/O error when the output folder is missing, asking no server", function()
    H.write(dir .. "/srv/y", "data")
    local g, msg, code = get("y", { out = dir .. "/no/such/dir" })
    assert.is_nil(g)
    assert.are.equal("io", code)
    assert.matches("cannot open the output folder .*/no/such/dir: No such file", msg)
    assert.is_nil(H.read(dir .. "/no/such/dir/y"))
  end)

  it("fails at once on a full disk, leaving nothing behind (tmpfs; root only)", function()
    if not H.is_root() then
      pending("skipped: mounting a small tmpfs needs root")
      return
    end
    local small = dir .. "/small"
    os.execute("mkdir -p " .. small)
    assert.is_true(os.execute("mount -t tmpfs -o size=256k tmpfs " .. small))
    finally(function() os.execute("umount " .. small) end)
    H.write_random(dir .. "/srv/large", 1024 * 1024)
    local g = assert(get("large", { out = small }))
    local res, msg, code = finish(g)
    g:close() -- its folder descriptor goes before the unmount
    assert.is_nil(res)
    assert.are.equal("io", code)
    assert.matches("reserve space", msg)
    assert.are.same({}, H.ls(small))
  end)

  it("sends a file again from a mapping of it, hashes kept, bytes unchanged", function()
    local size = 6 * 1024 * 1024 + 7 -- large enough for the hash cache
    H.write_random(dir .. "/srv/m.bin", size)
    local chunks = -(-size // 16384) -- loopback: 16 KiB chunks
    local res, err = finish(assert(get("m.bin")))
    assert.is_table(res, err)
    assert.are.equal(0, srv:stats().chunks_lent, "hashes are computed from bytes read, not mapped")
    os.remove(dir .. "/out/m.bin")
    res, err = finish(assert(get("m.bin")))
    assert.is_table(res, err)
    assert.is_true(srv:stats().chunks_lent >= chunks)
    assert.is_true(H.read(dir .. "/srv/m.bin") == H.read(dir .. "/out/m.bin"))
  end)

  it("a mapped file cut short while it is sent fails that transfer, not the server", function()
    local size = 64 * 1024 * 1024
    H.write_random(dir .. "/srv/cut.bin", size)
    assert.is_table(finish(assert(get("cut.bin"))))
    os.remove(dir .. "/out/cut.bin")
    local g = assert(get("cut.bin"))
    assert.is_true(H.drive({ g, srv }, function() return g:stats().bytes > 0 end, 20))
    local lent = srv:stats().chunks_lent
    assert.is_true(lent > 0)
    assert.is_true(os.execute("truncate -s " .. size // 2 .. " " .. dir .. "/srv/cut.bin"))
    local res, msg = finish(g)
    assert.is_nil(res, "the file changed: this fetch cannot finish")
    assert.matches("file changed", msg)
    -- nothing in place; a partial file stays to be resumed (each chunk checked against the version then offered)
    assert.is_nil(H.read(dir .. "/out/cut.bin"))
    assert.is_true(#H.partials(dir .. "/out", "cut.bin") <= 1)
    for _, p in ipairs(H.partials(dir .. "/out", "cut.bin")) do os.remove(dir .. "/out/" .. p) end
    H.write(dir .. "/srv/after", "still serving")
    assert.is_table(finish(assert(get("after"))))
    assert.are.equal("still serving", H.read(dir .. "/out/after"))
  end)

  it("fetches again checking every chunk against the tree: the server that lies is dropped, no other", function()
    H.write_random(dir .. "/srv/f.bin", 4 * 1024 * 1024)
    local liar = assert(udpxfer.serve { dir = dir .. "/srv", port = 0, lie_percent = 100 })
    local liar_addr = "127.0.0.1:" .. liar:port()
    local retries = {}
    local g = assert(get("f.bin", { servers = { "127.0.0.1", liar_addr },
      on_retry = function(ev) retries[#retries + 1] = ev end }))
    local ok = H.drive({ g, srv, liar }, function() return g.outcome ~= nil end, 60)
    liar:close()
    assert.is_true(ok)
    local res, err = g:result()
    assert.is_table(res, err)
    assert.is_true(H.read(dir .. "/srv/f.bin") == H.read(dir .. "/out/f.bin"))
    assert.are.same({ liar_addr }, res.dropped)
    assert.are.equal(1, #retries)
    assert.are.equal("whole-file SHA-256 mismatch", retries[1].message)
    assert.are.equal(2, retries[1].attempt)
    for _, s in ipairs(g:stats().servers) do
      if s.server == liar_addr then assert.is_true(s.bad >= 1 and not s.active) end
    end
    assert.are.same({ "f.bin" }, H.ls(dir .. "/out"))
  end)

  it("fails with corrupt when the only server lies, after one attempt checked against the tree", function()
    H.write_random(dir .. "/srv/f.bin", 1024 * 1024)
    srv:close()
    srv = assert(udpxfer.serve { dir = dir .. "/srv", port = 0, lie_percent = 100 })
    local retried = 0
    local res, msg, code = finish(assert(get("f.bin", { on_retry = function() retried = retried + 1 end })))
    assert.is_nil(res)
    assert.are.equal("corrupt", code)
    assert.are.equal("every server sent chunks that do not match the file's tree", msg)
    assert.are.equal(1, retried)
    assert.are.same({}, H.ls(dir .. "/out"))
  end)

  it("counts the broadcast addresses among the targets (all unicast: no wait for more offers)", function()
    local t, nb = udpxfer.targets { servers = { "127.0.0.1", "127.0.0.2:9" }, broadcast = false }
    assert.are.same({ "127.0.0.1:10526", "127.0.0.2:9" }, t)
    assert.are.equal(0, nb)
    t, nb = udpxfer.targets { servers = { "127.0.0.1" }, broadcast = { "127.255.255.255" } }
    assert.are.same({ "127.255.255.255:10526", "127.0.0.1:10526" }, t)
    assert.are.equal(1, nb)
  end)

  it("sizes chunks to the route's MTU: 16 KiB on loopback, the default when there is no route", function()
    assert.is_true(H.core.path_mtu("127.0.0.1:10526") > 16384 + 84)
    assert.are.equal(16384, udpxfer.chunk_size_for { "127.0.0.1:10526" })
    assert.are.equal(udpxfer.DEFAULT_CHUNK, udpxfer.chunk_size_for {})
  end)

  it("drives 70 fetches from one plain loop: poll takes any number of descriptors", function()
    local gets = {}
    for i = 1, 70 do
      H.write(("%s/srv/m%d"):format(dir, i), ("file %d\n"):format(i):rep(500))
      gets[i] = assert(get("m" .. i))
    end
    local objs = { srv }
    for _, g in ipairs(gets) do objs[#objs + 1] = g end
    assert.is_true(H.drive(objs, function()
      for _, g in ipairs(gets) do if not g.outcome then return false end end
      return true
    end, 60))
    for i, g in ipairs(gets) do
      assert.is_table((g:result()), "fetch " .. i)
      assert.are.equal(("file %d\n"):format(i):rep(500), H.read(("%s/out/m%d"):format(dir, i)))
      g:close()
    end
  end)

  it("sleeps while it waits for a version no server offers: a few dozen steps, little CPU", function()
    H.write(dir .. "/srv/w", "some version")
    local g = assert(get("w", { sha256 = ("0"):rep(64), timeout = 1.5 }))
    local steps, cpu = 0, os.clock()
    while not g:step() do
      steps = steps + 1
      H.core.poll({ g:pollfd(), g:events(), srv:pollfd(), srv:events() }, math.min(g:timeout() or 1, srv:timeout() or 1))
      srv:step()
    end
    cpu = os.clock() - cpu
    local _, _, code = g:result()
    g:close()
    assert.are.equal("version", code)
    assert.is_true(steps < 100, "steps: " .. steps)
    assert.is_true(cpu < 0.3, "CPU seconds: " .. cpu)
  end)

  it("raises on programmer errors and returns nil, message, code on runtime ones", function()
    assert.has_error(function() udpxfer.get() end)
    assert.has_error(function() udpxfer.get { name = 5 } end)
    assert.has_error(function() udpxfer.get { name = "x", chunk_size = 1, servers = { "127.0.0.1" }, broadcast = false } end)
    local s, msg, code = udpxfer.serve { dir = dir .. "/does-not-exist", port = 0 }
    assert.is_nil(s)
    assert.matches("does%-not%-exist", msg)
    assert.are.equal("io", code)
    local g, gmsg, gcode = udpxfer.get { name = "x", servers = { "127.0.0.1:99999" }, broadcast = false }
    assert.is_nil(g)
    assert.matches("127.0.0.1:99999", gmsg, 1, true)
    assert.are.equal("usage", gcode)
  end)

  it("raises, naming the option, for an unknown option or a value of the wrong kind in every constructor", function()
    local cases = {
      { udpxfer.get, { name = "x", brodcast = false }, 'udpxfer.get: unknown option "brodcast"' },
      { udpxfer.get, { name = "x", servers = "10.77.0.1" }, "udpxfer.get: option servers must be a list of strings" },
      { udpxfer.get, { name = "x", broadcast = true }, "udpxfer.get: option broadcast must be a list of strings" },
      { udpxfer.get, { name = "x", timeout = 0 / 0 }, "udpxfer.get: option timeout must be a number of seconds above 0" },
      { udpxfer.get, { name = "x", timeout = -1 }, "udpxfer.get: option timeout must be" },
      { udpxfer.get, { name = "x", port = 70000 }, "udpxfer.get: option port must be an integer from 1 to 65535" },
      { udpxfer.get, { name = "x", sha256 = "zz" }, "udpxfer.get: option sha256 must be 64 hex digits" },
      { udpxfer.get, { name = "x", on_done = "print" }, "udpxfer.get: option on_done must be a function" },
      { udpxfer.get, { servers = {} }, "udpxfer.get: name is required" },
      { udpxfer.serve, { dir = dir, prot = 1 }, 'udpxfer.serve: unknown option "prot"' },
      { udpxfer.serve, { dir = dir, shares = { "a" } }, "udpxfer.serve: option shares must be a table of NAME = PATH" },
      { udpxfer.sync, { remote = ".", dir = dir, dleete = true }, 'udpxfer.sync: unknown option "dleete"' },
      { udpxfer.sync, { remote = ".", dir = dir, exclude = "*.log" }, "udpxfer.sync: option exclude must be a list" },
      { udpxfer.sync, { remote = ".", dir = dir, limit_rate = 0 }, "udpxfer.sync: option limit_rate must be a number" },
      { udpxfer.list, { remote = 1 }, "udpxfer.list: option remote must be a string, not the integer 1" },
      { udpxfer.list, { on_progress = print }, 'udpxfer.list: unknown option "on_progress"' },
      { udpxfer.send, { host = "127.0.0.1", dat = "y" }, 'udpxfer.send: unknown option "dat"' },
      { udpxfer.recv, { port = 0, fd = "1" }, "udpxfer.recv: option fd must be an integer" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(function()
        local r = c[1](c[2]) -- not a tail call: the error names this line
        return r
      end)
      assert.is_false(ok, c[3])
      assert.truthy(tostring(err):find(c[3], 1, true), ("expected %q in %q"):format(c[3], tostring(err)))
      assert.truthy(tostring(err):find("udpxfer_spec.lua", 1, true), "not raised at the caller: " .. tostring(err))
    end
  end)

  it("drives a server and a sync of its folder in one loop with udpxfer.run", function()
    os.execute("mkdir -p " .. dir .. "/mirror")
    H.write(dir .. "/srv/hello.txt", "hello\n")
    local s = assert(udpxfer.sync { remote = ".", dir = dir .. "/mirror", broadcast = false,
      servers = { "127.0.0.1:" .. srv:port() } })
    local res = assert(udpxfer.run(srv, s))
    assert.are.equal("done", res.type)
    assert.falsy(srv.closed)
    assert.are.equal(H.read(dir .. "/srv/hello.txt"), H.read(dir .. "/mirror/hello.txt"))
    s:close()
    local g = assert(udpxfer.get { name = "nope", broadcast = false, servers = { "127.0.0.1:" .. srv:port() },
      out = dir .. "/out" })
    local ok, msg, code = udpxfer.run(srv, g)
    assert.are.same({ nil, "notfound" }, { ok, code }, msg)
    g:close()
  end)

  it("closes idempotently and supports to-be-closed variables", function()
    local kept
    do
      local s <close> = assert(udpxfer.serve { dir = dir .. "/srv", port = 0 })
      assert.is_number(s:port())
      kept = s
    end
    assert.is_true(kept.closed)
    assert.has_error(function() kept.obj:port() end, "server is closed")
    srv:close()
    srv:close()
    assert.is_true(srv:step())
  end)

  describe("resuming an interrupted fetch", function()
    local MiB = 1024 * 1024

    local function start(name, extra) return assert(get(name, extra)) end

    -- The finished fetch's result and stats.
    local function done(g)
      local res, err = finish(g)
      assert.is_table(res, err)
      return res, g:stats()
    end

    local function partials(name) return H.partials(dir .. "/out", name) end

    -- Fetch NAME until at least BYTES have arrived, then abort as a signal would.
    local function interrupt(name, bytes)
      local g = start(name, { limit_rate = 16 * MiB })
      assert.is_true(H.drive({ g, srv }, function() return g:stats().bytes >= bytes end, 30))
      g:abort()
      return g
    end

    it("abort() keeps the partial file, and the next fetch moves only what it lacks", function()
      H.write_random(dir .. "/srv/f.bin", 48 * MiB)
      interrupt("f.bin", 32 * MiB)
      assert.are.equal(1, #partials("f.bin"))
      local res, st = done(start("f.bin"))
      assert.are.equal(H.core.sha256_file(dir .. "/srv/f.bin"), res.sha256)
      assert.is_true(H.read(dir .. "/srv/f.bin") == H.read(dir .. "/out/f.bin"))
      -- what reached the disk before the abort (all but the slabs in memory) is not fetched again
      assert.is_true(st.reused >= 16 * MiB, st.reused .. " bytes reused")
      assert.are.equal(48 * MiB, st.bytes + st.reused)
      assert.are.same({ "f.bin" }, H.ls(dir .. "/out"))
    end)

    it("takes from the partial file only chunks of the version now offered: a changed file is never mixed", function()
      H.write_random(dir .. "/srv/c.bin", 48 * MiB)
      interrupt("c.bin", 32 * MiB)
      -- the server's file changes where the partial file has data
      os.execute(("dd if=/dev/urandom of=%s bs=1M count=8 seek=4 conv=notrunc status=none")
        :format(H.shell_quote(dir .. "/srv/c.bin")))
      local res, st = done(start("c.bin"))
      assert.are.equal(H.core.sha256_file(dir .. "/srv/c.bin"), res.sha256)
      assert.is_true(H.read(dir .. "/srv/c.bin") == H.read(dir .. "/out/c.bin"))
      assert.is_true(st.bytes >= 8 * MiB + 16 * MiB, st.bytes .. " bytes fetched")
      assert.is_true(st.reused > 0)
      assert.are.same({}, partials("c.bin"))
    end)

    it("checks every chunk of a partial file: garbage in it costs a full fetch and nothing else", function()
      H.write_random(dir .. "/srv/g.bin", 8 * MiB)
      H.write_random(dir .. "/out/.g.bin.udpxfer-0badcafe", 8 * MiB)
      local res, st = done(start("g.bin"))
      assert.are.equal(H.core.sha256_file(dir .. "/srv/g.bin"), res.sha256)
      assert.are.equal(0, st.reused)
      assert.are.equal(8 * MiB, st.bytes)
      assert.are.same({ "g.bin" }, H.ls(dir .. "/out"))
    end)

    it("of several partial files takes the fullest and removes the others", function()
      H.write_random(dir .. "/srv/m.bin", 16 * MiB)
      local src = H.shell_quote(dir .. "/srv/m.bin")
      os.execute(("head -c %d %s > %s"):format(12 * MiB, src, H.shell_quote(dir .. "/out/.m.bin.udpxfer-00000001")))
      os.execute(("head -c %d %s > %s"):format(2 * MiB, src, H.shell_quote(dir .. "/out/.m.bin.udpxfer-00000002")))
      local res, st = done(start("m.bin"))
      assert.are.equal(H.core.sha256_file(dir .. "/srv/m.bin"), res.sha256)
      assert.are.equal(12 * MiB, st.reused)
      assert.are.same({ "m.bin" }, H.ls(dir .. "/out"))
    end)

    it("leaves partial files alone with resume = false, and close() removes its own", function()
      H.write_random(dir .. "/srv/n.bin", 4 * MiB)
      H.write(dir .. "/out/.n.bin.udpxfer-00000003", "partial")
      local res, st = done(start("n.bin", { resume = false }))
      assert.is_table(res)
      assert.are.equal(0, st.reused)
      assert.are.same({ ".n.bin.udpxfer-00000003", "n.bin" }, H.ls(dir .. "/out"))
      os.remove(dir .. "/out/n.bin")
      local g = start("n.bin", { limit_rate = MiB })
      assert.is_true(H.drive({ g, srv }, function() return g:stats().bytes > 0 end, 20))
      g:close()
      assert.are.same({ ".n.bin.udpxfer-00000003" }, H.ls(dir .. "/out"))
    end)
  end)

  describe("a file already at the destination", function()
    local MiB = 1024 * 1024

    -- BYTES with the byte at offset AT changed.
    local function changed(bytes, at)
      return bytes:sub(1, at) .. string.char((bytes:byte(at + 1) + 1) % 256) .. bytes:sub(at + 2)
    end

    -- The finished fetch's stats.
    local function fetched(g)
      local res, err = finish(g)
      assert.is_table(res, err)
      local st = g:stats()
      g:close()
      return st
    end

    it("is the local copy: 1 byte changed in 8 MiB moves one chunk; resume = false moves every byte", function()
      H.write_random(dir .. "/srv/d.bin", 8 * MiB)
      local new = H.read(dir .. "/srv/d.bin")
      H.write(dir .. "/out/d.bin", changed(new, 5 * MiB + 7))
      local st = fetched(assert(get("d.bin")))
      assert.is_true(new == H.read(dir .. "/out/d.bin"))
      assert.are.same({ 16384, 8 * MiB - 16384 }, { st.bytes, st.reused }) -- one 16 KiB chunk (loopback)
      assert.are.same({ "d.bin" }, H.ls(dir .. "/out"))
      H.write(dir .. "/out/d.bin", changed(new, 7))
      st = fetched(assert(get("d.bin", { resume = false })))
      assert.are.same({ 8 * MiB, 0 }, { st.bytes, st.reused })
      assert.is_true(new == H.read(dir .. "/out/d.bin"))
    end)

    it("stays as it was while a fetch against it is cut short; the run again moves only what neither copy holds", function()
      H.write_random(dir .. "/srv/i.bin", 8 * MiB)
      os.execute(("head -c %d %s > %s && head -c %d /dev/urandom >> %s"):format(4 * MiB,
        H.shell_quote(dir .. "/srv/i.bin"), H.shell_quote(dir .. "/out/i.bin"), 4 * MiB, H.shell_quote(dir .. "/out/i.bin")))
      local old = H.read(dir .. "/out/i.bin")
      local g = assert(get("i.bin", { limit_rate = MiB }))
      assert.is_true(H.drive({ g, srv }, function() return g:stats().bytes > 0 end, 30))
      g:abort()
      assert.is_true(old == H.read(dir .. "/out/i.bin"), "the file under the name is as it was")
      assert.are.equal(1, #H.partials(dir .. "/out", "i.bin"))
      local st = fetched(assert(get("i.bin")))
      assert.is_true(st.reused >= 4 * MiB, st.reused .. " bytes reused")
      assert.are.equal(8 * MiB, st.bytes + st.reused)
      assert.is_true(H.read(dir .. "/srv/i.bin") == H.read(dir .. "/out/i.bin"))
      assert.are.same({ "i.bin" }, H.ls(dir .. "/out"))
    end)

    it("fails at once (io) for a folder, a symlink or a FIFO there, left as they are; force replaces all but a folder", function()
      for _, n in ipairs { "dir", "link", "fifo" } do H.write(dir .. "/srv/" .. n, "new " .. n) end
      H.write(dir .. "/target", "kept")
      os.execute(("cd %s/out && mkdir dir && ln -s ../target link && mkfifo fifo"):format(H.shell_quote(dir)))
      local why = { dir = "is a folder: not replaced",
        link = "is a symbolic link: not followed, and not replaced unless forced",
        fifo = "is a FIFO: not written into, and not replaced unless forced" }
      for n, msg in pairs(why) do
        local g, err, code = get(n)
        assert.is_nil(g)
        assert.are.same({ dir .. "/out/" .. n .. " " .. msg, "io" }, { err, code })
      end
      local types = { H.file_type(dir .. "/out/dir"), H.file_type(dir .. "/out/link"), H.file_type(dir .. "/out/fifo") }
      assert.are.same({ "directory", "symbolic link", "fifo" }, types)
      local g, err, code = get("dir", { force = true })
      assert.is_nil(g)
      assert.are.same({ dir .. "/out/dir " .. why.dir, "io" }, { err, code })
      for _, n in ipairs { "link", "fifo" } do
        fetched(assert(get(n, { force = true })))
        assert.are.equal("regular file", H.file_type(dir .. "/out/" .. n))
        assert.are.equal("new " .. n, H.read(dir .. "/out/" .. n))
      end
      assert.are.equal("kept", H.read(dir .. "/target"))
    end)
  end)

  describe("a sparse file", function()
    local MiB = 1024 * 1024

    it("arrives sparse: its holes take no blocks, its bytes are the server's", function()
      H.write_sparse(dir .. "/srv/s.bin", 64 * MiB, { { 0, MiB }, { 20 * MiB, MiB }, { 64 * MiB - 100, 100 } })
      local res, err = finish(assert(get("s.bin")))
      assert.is_table(res, err)
      assert.are.equal(H.core.sha256_file(dir .. "/srv/s.bin"), H.core.sha256_file(dir .. "/out/s.bin"))
      local used = H.allocated(dir .. "/out/s.bin")
      assert.is_true(used <= 2 * MiB + 64 * 1024, used .. " bytes allocated")
    end)

    it("cut short, leaves a sparse partial file; the run again reuses of its holes only what the tree vouches for", function()
      H.write_sparse(dir .. "/srv/p.bin", 40 * MiB, { { 8 * MiB, 2 * MiB }, { 30 * MiB, 2 * MiB } })
      local g = assert(get("p.bin", { limit_rate = 16 * MiB }))
      assert.is_true(H.drive({ g, srv }, function() return g:stats().bytes >= 20 * MiB end, 30))
      g:abort()
      local part = H.partials(dir .. "/out", "p.bin")
      assert.are.equal(1, #part)
      local used = H.allocated(dir .. "/out/" .. part[1])
      assert.is_true(used <= 2 * MiB + 64 * 1024, used .. " bytes allocated")
      g = assert(get("p.bin"))
      local res, err = finish(g)
      assert.is_table(res, err)
      local st = g:stats()
      g:close()
      -- the data at 30 MiB, where the partial file has a hole, travels
      assert.is_true(st.bytes >= 2 * MiB and st.reused >= 20 * MiB, st.bytes .. " fetched, " .. st.reused .. " reused")
      assert.are.equal(40 * MiB, st.bytes + st.reused)
      assert.are.equal(H.core.sha256_file(dir .. "/srv/p.bin"), res.sha256)
      assert.are.equal(res.sha256, H.core.sha256_file(dir .. "/out/p.bin"))
      assert.are.same({ "p.bin" }, H.ls(dir .. "/out"))
    end)
  end)
end)

describe("udpxfer over IPv6 (::1)", function()
  local has_v6 = H.run("ip -6 addr show lo 2>/dev/null | grep -q '::1/128'") == 0
  local dir, srv

  before_each(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
    H.write(dir .. "/srv/six.txt", ("over IPv6\n"):rep(1000))
    srv = assert(udpxfer.serve { dir = dir .. "/srv", port = 0 })
  end)

  after_each(function()
    srv:close()
    H.rmrf(dir)
  end)

  it("fetches from a server named by an IPv6 literal, the server on every address", function()
    if not has_v6 then return pending("no ::1 on this host") end
    local g = assert(udpxfer.get { name = "six.txt", out = dir .. "/out", servers = { "[::1]:" .. srv:port() },
      broadcast = false })
    assert.is_true(H.drive({ g, srv }, function() return g.outcome ~= nil end, 20))
    local res = assert(g:result())
    assert.are.equal(("over IPv6\n"):rep(1000), H.read(dir .. "/out/six.txt"))
    assert.matches("^%[::1%]:%d+$", g:stats().servers[1].server)
    assert.are.equal(res.sha256, H.core.sha256_file(dir .. "/srv/six.txt"))
    g:close()
  end)

  it("serves IPv4 and IPv6 clients from one socket", function()
    local g4 = assert(udpxfer.get { name = "six.txt", out = dir .. "/out", as = "four", broadcast = false,
      servers = { "127.0.0.1:" .. srv:port() } })
    local objs = { srv, g4 }
    local g6
    if has_v6 then
      g6 = assert(udpxfer.get { name = "six.txt", out = dir .. "/out", as = "six", broadcast = false,
        servers = { "[::1]:" .. srv:port() } })
      objs[#objs + 1] = g6
    end
    assert.is_true(H.drive(objs, function() return g4.outcome ~= nil and (not g6 or g6.outcome ~= nil) end, 20))
    assert.matches("^127%.0%.0%.1:", g4:stats().servers[1].server, 1)
    assert.is_table((g4:result()))
    if g6 then assert.is_table((g6:result())) end
    g4:close()
    if g6 then g6:close() end
  end)

  it("syncs and lists from the command line and streams over ::1", function()
    if not has_v6 then return pending("no ::1 on this host") end
    local pid, port, pipe = H.start_server(dir .. "/srv", nil, nil, true)
    finally(function() H.kill(pid) pipe:close() end)
    local code, out, err = H.run(("%s sync . %s --server [::1]:%d --broadcast none"):format(H.UDPXFER,
      H.shell_quote(dir .. "/out"), port))
    assert.are.equal(0, code, err)
    assert.matches("1 files, 1 changed", out)
    code, out, err = H.run(("%s ls --server [::1]:%d --broadcast none"):format(H.UDPXFER, port))
    assert.are.equal(0, code, err)
    assert.matches("six%.txt\n", out)
    local r = assert(udpxfer.recv { port = 0, bind = "::1" })
    local s = assert(udpxfer.send { host = "[::1]:" .. r:port(), data = ("stream over IPv6\n"):rep(5000) })
    assert.is_true(H.drive({ r, s }, function() return r.outcome ~= nil and s.outcome ~= nil end, 20))
    assert.are.equal(("stream over IPv6\n"):rep(5000), assert(r:result()).data)
    r:close()
    s:close()
  end)
end)

describe("a Lua script interrupted in run()", function()
  local dir, pid, port, pipe

  setup(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
    H.write_random(dir .. "/srv/big.bin", 32 * 1024 * 1024)
    pid, port, pipe = H.start_server(dir .. "/srv", "-q", nil, true)
  end)

  teardown(function()
    H.kill(pid)
    pipe:close()
    H.rmrf(dir)
  end)

  it("exits as SIGINT does with one line, keeps the partial file, and a run again resumes it", function()
    local script = dir .. "/get.lua"
    H.write(script, ([[
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("UDPXFER_CPATH") or "lua/?.so") .. ";" .. package.cpath
local udpxfer = require "udpxfer"
local g = assert(udpxfer.get { name = "big.bin", out = %q, broadcast = false, servers = { "127.0.0.1:%d" },
  limit_rate = tonumber(arg[1]), progress_interval = 0,
  on_progress = function(st) if st.bytes > 4 * 1024 * 1024 and not shown then shown = true print("going") io.stdout:flush() end end })
local res = assert(g:run())
print("done", res.size)
]]):format(dir .. "/out", port))
    local errf = dir .. "/err"
    local gpid, out = H.spawn(("%s %s 4000000 2>%s"):format(H.LUA, script, errf))
    assert.are.equal("going", out:read("l"))
    H.kill(gpid, "INT")
    local rest = out:read("a")
    local _, how, code = out:close()
    assert.are.equal("", rest)
    assert.is_true((how == "signal" and code == 2) or (how == "exit" and code == 130), how .. " " .. tostring(code))
    assert.are.equal("udpxfer: interrupted\n", H.read(errf))
    local partial = H.partials(dir .. "/out", "big.bin")
    assert.are.equal(1, #partial)
    local rc, again = H.run(("%s %s"):format(H.LUA, script))
    assert.are.equal(0, rc)
    assert.are.equal("done\t33554432", again:match("done\t%d+"))
    assert.are.equal(H.core.sha256_file(dir .. "/srv/big.bin"), H.core.sha256_file(dir .. "/out/big.bin"))
    assert.are.same({}, H.partials(dir .. "/out", "big.bin"))
  end)
end)

describe("numbers out of range", function()
  local core = H.core
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmrf(dir) end)

  -- Each option of each constructor, given a value no integer type holds:
  -- a clear error naming the option, never a conversion out of range.
  local cases = {
    { "server", function(o) o.dir = dir return core.server(o) end, { "port", "max_chunk", "max_sessions",
      "idle_timeout", "corrupt_percent", "lie_percent", "host_sessions", "host_requests", "host_rate", "max_rate",
      "legacy_mbit", "async_hash_min", "seed" } },
    { "client", function(o) o.name, o.memory, o.targets = "x", true, {} return core.client(o) end, { "chunk_size",
      "discover_timeout", "idle_timeout", "window", "limit_rate", "now", "seed" } },
    { "sender", function(o) o.peer = "10.0.0.1:1" return core.sender(o) end, { "mss", "buffer", "connect_timeout",
      "idle_timeout", "fd", "now", "seed" } },
    { "receiver", function(o) return core.receiver(o) end, { "buffer", "listen_timeout", "idle_timeout", "port",
      "now", "seed" } },
  }
  for _, case in ipairs(cases) do
    local what, make, options = case[1], case[2], case[3]
    it(what .. ": every number option is range-checked by name", function()
      for _, opt in ipairs(options) do
        for _, v in ipairs { 1e300, -1e300, 0 / 0, math.huge } do
          local ok, err = pcall(make, { sim = true, [opt] = v })
          assert.is_false(ok, ("%s = %s was taken"):format(opt, tostring(v)))
          assert.matches("option " .. opt .. " must be a number from", err, 1, true)
        end
      end
    end)
  end

  it("a sim engine's time must be a time", function()
    local s = assert(core.server { dir = dir, sim = true })
    for _, t in ipairs { -1, 0 / 0, 1e300 } do
      assert.has_error(function() s:input(H.wire.request(1, "x"), "10.0.0.1:1", t) end)
      assert.has_error(function() s:output(t) end)
    end
    s:close()
  end)
end)

describe("a server that cannot read what it is asked for", function()
  it("is named as such, not as a missing file", function()
    local later = H.cleanups(finally)
    local fake = H.fake_server("", { ["x.bin"] = { 5, "server I/O error" } })
    later(function() fake:close() end)
    local out = H.tmpdir()
    later(function() H.rmrf(out) end)
    local g = assert(udpxfer.get { name = "x.bin", out = out, broadcast = false, servers = { "127.0.0.1:" .. fake.port } })
    assert.is_true(H.drive({ g, fake }, function() return g.outcome ~= nil end, 20))
    local res, msg, code = g:result()
    g:close()
    assert.is_nil(res)
    assert.are.equal("notfound", code)
    assert.are.equal("no server that answered could read it (server I/O error)", msg)
  end)
end)
