-- The engines over a simulated link: no sockets, time passed in, loss,
-- reordering, duplication, corruption and truncation driven deterministically.
local H = require "spec.helper"
local core = H.core

local SERVER = "10.0.0.1:10526"
local CHUNK = 256

-- A sim server holding CONTENT as f.bin and a sim client for it; SEED
-- seeds both engines (shuffles, cookie secret, transfer id).
local function setup(content, opts, seed)
  opts = opts or {}
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
  H.write(dir .. "/srv/f.bin", content)
  local server = assert(core.server { dir = dir .. "/srv", sim = true, seed = seed })
  local client = assert(core.client {
    name = "f.bin", out = dir .. "/out", targets = opts.targets or { SERVER }, sim = true,
    chunk_size = opts.chunk_size or CHUNK, discover_timeout = opts.discover_timeout,
    sha256 = opts.sha256, unicast = opts.unicast, exclude = opts.exclude, seed = seed,
  })
  return dir, server, client
end

local function fetch(content, link, seed, opts)
  local dir, server, client = setup(content, opts, seed)
  local final, events, st = H.simulate {
    client = client, servers = { [SERVER] = server }, link = link, seed = seed,
    filter = opts and opts.filter, max_time = opts and opts.max_time or 300,
  }
  local got = H.read(dir .. "/out/f.bin")
  local listing = H.ls(dir .. "/out")
  local stats = client:stats()
  client:close()
  server:close()
  H.rmrf(dir)
  return final, got, listing, stats, st, events
end

-- One lossless fetch of f.bin from SERVER into DIR/out at chunk size CS;
-- returns the file's bytes and the server's stats. Each fetch seeds its
-- client anew: a transfer id a server saw before would join that session.
local fetches = 0
local function fetch_from(server, dir, cs)
  os.remove(dir .. "/out/f.bin")
  fetches = fetches + 1
  local client = assert(core.client {
    name = "f.bin", out = dir .. "/out", targets = { SERVER }, sim = true, chunk_size = cs, unicast = true,
    seed = 1000 + fetches,
  })
  local final = H.simulate { client = client, servers = { [SERVER] = server } }
  client:close()
  assert.are.equal("done", final.type, final.message)
  return H.read(dir .. "/out/f.bin"), server:stats()
end

describe("engine over a simulated link", function()
  local content = H.bytes(CHUNK * 300 + 77, 7)

  for _, loss in ipairs { 0, 0.10, 0.30 } do
    it(("delivers a byte-identical file at %d%% loss"):format(loss * 100), function()
      local final, got, _, stats, st = fetch(content, { loss = loss }, 42)
      assert.is_table(final)
      assert.are.equal("done", final.type, final.message)
      assert.are.equal(core.sha256(content), final.sha256)
      assert.is_true(got == content)
      if loss > 0 then
        assert.is_true(st.dropped > 0)
        local lost = 0
        for _, s in ipairs(stats.servers) do lost = lost + s.lost + s.timeouts end
        assert.is_true(lost > 0, "losses were noticed and recovered")
      end
    end)
  end

  it("writes a 40 MiB file whose chunks arrive shuffled over more 1 MiB slabs than the sink holds", function()
    -- 2560 chunks of 16 KiB across 40 slab regions, at 10% loss and with
    -- reordering; chunk 0 is lost until 1500 others have arrived, so the
    -- hash cannot start and more than 16 regions are open at once: slabs
    -- are evicted and read back later. Every 64 KiB block is distinct.
    local base = H.bytes(65536, 99)
    local blocks = {}
    for i = 1, 640 do blocks[i] = string.pack(">I4", i) .. base:sub(5) end
    local big = table.concat(blocks)
    local passed = 0
    local function hold_chunk_0(pkt, from)
      if from ~= SERVER or pkt:byte(4) ~= H.TYPE.DATA then return pkt end
      if H.wire.decode(pkt).index == 0 and passed < 1500 then return nil end
      passed = passed + 1
      return pkt
    end
    local final, got, listing, stats = fetch(big, { loss = 0.1, reorder = 0.3 }, 8,
      { chunk_size = 16384, filter = hold_chunk_0 })
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == big)
    assert.are.same({ "f.bin" }, listing)
    assert.is_true(stats.readback > 0, "slabs left memory and were read back")
  end)

  it("a chunk arriving after its NEED was given up does not hide one still owed", function()
    -- A late chunk must not count as received in its server's window once
    -- its entry is gone: a chunk still owed would look delivered, no
    -- timeout would fire, and the transfer would end "every server stopped
    -- answering". Several seeds: each shuffles and loses differently.
    local base = H.bytes(65536, 98)
    local blocks = {}
    for i = 1, 640 do blocks[i] = string.pack(">I4", i) .. base:sub(5) end
    local big = table.concat(blocks)
    for seed = 1, 8 do
      local final, got = fetch(big, { loss = 0.1, reorder = 0.3 }, seed, { chunk_size = 16384 })
      assert.are.equal("done", final.type, ("seed %d: %s"):format(seed, final.message))
      assert.is_true(got == big)
    end
  end)

  it("copes with reordering and duplication", function()
    local final, got, _, stats, st = fetch(content, { reorder = 0.5, dup = 0.2 }, 3)
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.is_true(st.dup > 0)
    assert.is_true(stats.dups > 0, "duplicates are counted")
    assert.are.equal(stats.chunks, stats.have)
  end)

  it("rejects corrupted payloads and still finishes byte-identical", function()
    local final, got, _, stats, st = fetch(content, { corrupt = 0.05 }, 5)
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.is_true(st.corrupt > 0)
    assert.is_true(stats.bad > 0, "corrupted chunks fail verification")
  end)

  it("ignores truncated datagrams", function()
    local final, got, _, _, st = fetch(content, { truncate = 0.05, loss = 0.02 }, 11)
    assert.are.equal("done", final.type, final.message)
    assert.is_true(st.truncated > 0)
    assert.is_true(got == content)
  end)

  for _, n in ipairs { 0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK } do
    it(("handles a file of %d bytes"):format(n), function()
      local data = H.bytes(n, n + 1)
      local final, got, listing = fetch(data, { loss = 0.1 }, n + 100)
      assert.are.equal("done", final.type, final.message)
      assert.are.equal(n, final.size)
      assert.is_true(got == data)
      assert.are.same({ "f.bin" }, listing)
    end)
  end

  it("fails clearly on a corrupt offer and leaves no file under the final name", function()
    local flip = function(pkt, from)
      if from == SERVER and pkt:byte(4) == H.TYPE.OFFER then
        -- flip a bit of the advertised SHA-256 (bytes 37..68 of the datagram)
        return pkt:sub(1, 40) .. string.char(pkt:byte(41) ~ 1) .. pkt:sub(42)
      end
      return pkt
    end
    local final, got, listing = fetch(content, {}, 1, { filter = flip })
    assert.are.equal("error", final.type)
    assert.are.equal("corrupt", final.code)
    assert.matches("SHA%-256 mismatch", final.message)
    assert.is_nil(got)
    assert.are.same({}, listing, "no final file and no temporary file left behind")
  end)

  it("refuses to replace an existing file when verification fails", function()
    local dir, server, client = setup(content)
    H.write(dir .. "/out/f.bin", "precious")
    local final = H.simulate {
      client = client, servers = { [SERVER] = server },
      filter = function(pkt, from)
        if from == SERVER and pkt:byte(4) == H.TYPE.OFFER then
          return pkt:sub(1, 40) .. string.char(pkt:byte(41) ~ 1) .. pkt:sub(42)
        end
        return pkt
      end,
    }
    assert.are.equal("corrupt", final.code)
    assert.are.equal("precious", H.read(dir .. "/out/f.bin"))
    assert.are.same({ "f.bin" }, H.ls(dir .. "/out"))
    client:close()
    server:close()
    H.rmrf(dir)
  end)

  it("says no server answered when nothing comes back, within the discovery timeout", function()
    local final, got, listing, stats = fetch(content, { loss = 1 }, 1, { discover_timeout = 10 })
    assert.are.equal("error", final.type)
    assert.are.equal("noserver", final.code)
    assert.is_true(stats.elapsed <= 10.5)
    assert.is_nil(got)
    assert.are.same({}, listing)
  end)

  it("retries discovery with exponential backoff", function()
    local times = {}
    fetch(content, { loss = 1 }, 1, {
      discover_timeout = 10,
      filter = function(pkt, from)
        if from ~= SERVER then times[#times + 1] = pkt end
        return pkt
      end,
    })
    -- requests at 0, .05, .15, .35, .75, 1.55, 3.15, 6.35 s: eight in ten seconds
    assert.are.equal(8, #times)
  end)

  it("takes only the version named by sha256", function()
    local final = fetch(content, {}, 1, { sha256 = ("0"):rep(64), discover_timeout = 2 })
    assert.are.equal("version", final.code)
  end)

  it("asks again for exactly the missing chunks", function()
    local dropped_once, asked = {}, {}
    local final, got = fetch(content, {}, 9, {
      filter = function(pkt, from)
        local m = H.wire.decode(pkt)
        if from == SERVER and m.type == H.TYPE.DATA and m.index % 10 == 0 and not dropped_once[m.index] then
          dropped_once[m.index] = true
          return nil
        end
        if from ~= SERVER and m.type == H.TYPE.NEED then
          local body_start = 16 + 8 + 16 + 10
          local n = (">I2"):unpack(pkt, 16 + 8 + 16 + 9)
          for i = 0, n - 1 do
            local first, count = (">I4I4"):unpack(pkt, body_start + 1 + 8 * i)
            for c = first, first + count - 1 do asked[c] = (asked[c] or 0) + 1 end
          end
        end
        return pkt
      end,
    })
    assert.are.equal("done", final.type)
    assert.is_true(got == content)
    for i = 0, 300 do
      local want = (i % 10 == 0) and 2 or 1
      assert.are.equal(want, asked[i], "chunk " .. i .. " requested " .. tostring(asked[i]) .. " times")
    end
  end)
end)

describe("start-up and the server's chunk hashes", function()
  local CLIENT = "10.0.0.2:40000"
  local content = H.bytes(CHUNK * 300 + 77, 11)

  -- The client's datagrams at time T go to the server; the server's answers
  -- reach the client 1 ms later. Returns the types the client sent, as a set.
  local function exchange(client, server, t)
    local sent = {}
    for d in function() return (client:output(t)) end do
      sent[H.wire.decode(d).type] = true
      server:input(d, CLIENT, t)
    end
    for d in function() return (server:output(t)) end do client:input(d, SERVER, t + 0.001) end
    return sent
  end

  local function finish(dir, client, server, start)
    local final = H.simulate { client = client, servers = { [SERVER] = server }, start = start }
    local got = H.read(dir .. "/out/f.bin")
    return final, got
  end

  it("the first NEED is timed when it goes out, not before the output file was prepared", function()
    -- Preparing the file (on_start) happens inside output(); with a 1 GiB
    -- file on tmpfs it took 0.2 s, and a NEED stamped with the time from
    -- before it looked overdue at once: a spurious timeout halved the window.
    local dir, server, client = setup(content)
    assert.are.same({ [H.TYPE.REQUEST] = true }, exchange(client, server, 0))
    assert.are.same({}, exchange(client, server, 0.2), "the call that starts the transfer sends nothing")
    assert.are.equal(0, client:deadline(), "and asks for another call at once")
    -- the host came back 0.5 s later (discovery goes on, for late servers)
    assert.is_true(exchange(client, server, 0.7)[H.TYPE.NEED])
    local final, got = finish(dir, client, server, 0.702)
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    local peer = client:stats().servers[1]
    assert.are.equal(0, peer.timeouts)
    assert.is_true(peer.rtt < 0.01, "rtt " .. peer.rtt)
    client:close()
    server:close()
    H.rmrf(dir)
  end)

  it("keeps the queue it builds before a slower link near 2 ms (delay-based window)", function()
    -- In-flight data beyond the path's capacity only waits in a queue (the
    -- socket buffer, on a host): it costs memory and cache, and RTO grows.
    local data = H.bytes(3 * 1024 * 1024, 7)
    local dir, server, client = setup(data, { chunk_size = 1392, unicast = true })
    local final, _, st = H.simulate {
      client = client, servers = { [SERVER] = server }, rates = { [SERVER] = 20e6 }, link = { delay = 0.0002 },
    }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(H.read(dir .. "/out/f.bin") == data)
    local peer = client:stats().servers[1]
    assert.are.equal(0, st.dropped)
    assert.are.equal(0, peer.timeouts)
    assert.is_true(peer.rtt < 0.0045, "smoothed round trip " .. peer.rtt)
    client:close()
    server:close()
    H.rmrf(dir)
  end)

  it("starts as soon as every server asked by address has offered, without waiting for more offers", function()
    local dir, server, client = setup(content, { unicast = true })
    assert.are.same({ [H.TYPE.REQUEST] = true }, exchange(client, server, 0))
    assert.are.same({}, exchange(client, server, 0.002))
    assert.are.same({ [H.TYPE.NEED] = true }, exchange(client, server, 0.0021))
    client:close()
    server:close()
    H.rmrf(dir)
    -- With broadcast in play more servers may answer: it waits 100 ms for them.
    dir, server, client = setup(content)
    assert.are.same({ [H.TYPE.REQUEST] = true }, exchange(client, server, 0))
    assert.are.same({}, exchange(client, server, 0.04))
    assert.are.same({ [H.TYPE.REQUEST] = true }, exchange(client, server, 0.05), "asked again: no NEED yet")
    assert.are.same({}, exchange(client, server, 0.09))
    assert.is_true(client:deadline() > 0.1)
    client:close()
    server:close()
    H.rmrf(dir)
  end)

  it("does not wait for the offer of a server it was told to exclude", function()
    local OTHER = "10.0.0.9:10526"
    local function needs_by_2ms(exclude)
      local dir, server, client = setup(content, { unicast = true, targets = { SERVER, OTHER }, exclude = exclude })
      local asked = false
      for _, t in ipairs { 0, 0.002, 0.0021 } do asked = exchange(client, server, t)[H.TYPE.NEED] or asked end
      client:close()
      server:close()
      H.rmrf(dir)
      return asked
    end
    assert.is_true(needs_by_2ms { OTHER })
    assert.is_false(needs_by_2ms(nil), "not excluded, the other is waited for")
  end)

  it("asks each server to pace its chunks at the window's rate, with headroom, once it has a round trip", function()
    local dir, server, client = setup(content, { unicast = true })
    exchange(client, server, 0)
    exchange(client, server, 0.002)
    local needs = {}
    local function capture(t)
      for d in function() return (client:output(t)) end do
        local m = H.wire.decode(d)
        if m.type == H.TYPE.NEED then needs[#needs + 1] = m end
        server:input(d, CLIENT, t)
      end
      for d in function() return (server:output(t)) end do client:input(d, SERVER, t + 0.001) end
    end
    capture(0.003)
    assert.are.equal(0, needs[1].rate_kib, "no round trip yet: no pacing")
    local peer = client:stats().servers[1] -- its chunks are in: a round trip of 1 ms
    capture(0.005)
    local want = 2 * peer.window * (CHUNK + 40) / peer.rtt / 1024 -- still doubling: gain 2
    assert.is_true(#needs >= 2)
    assert.is_true(math.abs(needs[#needs].rate_kib - want) <= want * 0.02, needs[#needs].rate_kib .. " vs " .. want)
    client:close()
    server:close()
    H.rmrf(dir)
  end)

  it("the server hashes a file's chunks once, and again only after the file changes", function()
    local cs = 16384
    local size = 4 * 1024 * 1024 + 5 -- large enough for the cache
    local chunks = size // cs + 1
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
    local v1, v2 = H.bytes(size, 21), H.bytes(size, 22)
    H.write(dir .. "/srv/f.bin", v1)
    local server = assert(core.server { dir = dir .. "/srv", sim = true })
    local function get_once() return fetch_from(server, dir, cs) end
    local got, st = get_once()
    assert.is_true(got == v1)
    assert.are.equal(chunks, st.chunk_hashes_computed)
    assert.are.equal(0, st.chunk_hashes_cached)
    got, st = get_once()
    assert.is_true(got == v1)
    assert.are.equal(chunks, st.chunk_hashes_computed, "nothing hashed again")
    assert.are.equal(chunks, st.chunk_hashes_cached)
    -- Same size, new bytes: the old hashes must not be used.
    H.write(dir .. "/srv/f.bin", v2)
    os.execute("touch -d '+1 minute' " .. dir .. "/srv/f.bin")
    got, st = get_once()
    assert.is_true(got == v2)
    assert.are.equal(2 * chunks, st.chunk_hashes_computed)
    assert.are.equal(chunks, st.chunk_hashes_cached)
    server:close()
    H.rmrf(dir)
  end)

  it("a large file is hashed off the server's loop: 'preparing' meanwhile, other files served, then offered", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/srv")
    os.execute("truncate -s 256M " .. dir .. "/srv/big") -- sparse: hashing takes a while, costs no disk
    H.write(dir .. "/srv/small", "small file")
    local server = assert(core.server { dir = dir .. "/srv", sim = true })
    local function ask(name, xid)
      server:input(H.wire.request(xid, name, 16384), CLIENT, 0)
      local pkt = assert(server:output(0))
      return H.wire.decode(pkt)
    end
    local m = ask("big", 1)
    assert.are.equal(H.TYPE.ERROR, m.type)
    assert.are.equal(6, m.code)
    assert.matches("preparing", m.text)
    m = ask("small", 2)
    assert.are.equal(H.TYPE.OFFER, m.type, "a small file is offered at once")
    assert.is_true(server:stats().preparing, "while the large one is still being hashed")
    assert.are.equal(1, core.poll({ server:pollfd(), "r" }, 20), "its descriptor wakes when the hash is done")
    assert.is_false(server:stats().preparing)
    m = ask("big", 3)
    assert.are.equal(H.TYPE.OFFER, m.type)
    assert.are.equal(256 * 1024 * 1024, m.size)
    assert.are.equal(core.sha256_file(dir .. "/srv/big"), (m.sha256:gsub(".", function(c) return ("%02x"):format(c:byte()) end)))
    server:close()
    H.rmrf(dir)
  end)

  it("the client waits past its discovery timeout while a server answers 'preparing', then fetches", function()
    local prepared = 0
    local final, got, _, stats, _, events = fetch(content, {}, 1, {
      filter = function(pkt, from)
        local m = H.wire.decode(pkt)
        if from == SERVER and m.type == H.TYPE.OFFER and prepared < 70 then
          prepared = prepared + 1
          return H.wire.error(m.xid, 6, "preparing the file (hashing it); ask again")
        end
        return pkt
      end,
    })
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.are.equal(70, prepared)
    local told = 0
    for _, ev in ipairs(events) do
      if ev.type == "preparing" then
        told = told + 1
        assert.are.equal(SERVER, ev.server)
      end
    end
    assert.are.equal(1, told, "reported once")
    assert.is_true(stats.elapsed > 10, "past the 10 s discovery timeout: " .. stats.elapsed)
    assert.is_true(stats.elapsed < 15, "asked again at most every 0.25 s, quickly at first: " .. stats.elapsed)
  end)

  it("the client gives up ten minutes into 'preparing' answers, saying so", function()
    local final = fetch(content, {}, 1, {
      filter = function(pkt, from)
        local m = H.wire.decode(pkt)
        if from == SERVER and m.type == H.TYPE.OFFER then return H.wire.error(m.xid, 6, "preparing") end
        return pkt
      end,
      max_time = 700,
    })
    assert.are.equal("noserver", final.code)
    assert.matches("still preparing", final.message)
  end)

  it("the server keeps a file's chunk hashes for two chunk sizes, the least recently used giving way", function()
    -- Clients on loopback (16 KiB chunks) and behind Ethernet (1408) ask
    -- for different sizes; neither may evict the other's hashes.
    local size = 4 * 1024 * 1024 + 5
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
    local content = H.bytes(size, 23)
    H.write(dir .. "/srv/f.bin", content)
    local server = assert(core.server { dir = dir .. "/srv", sim = true })
    local function get_once(cs)
      local got, st = fetch_from(server, dir, cs)
      assert.is_true(got == content)
      return st.chunk_hashes_computed, st.chunk_hashes_cached
    end
    local function chunks(cs) return (size + cs - 1) // cs end
    local big, small, third = 16384, 1408, 4096
    get_once(big)
    get_once(small)
    local computed, hits = get_once(big)
    assert.are.equal(chunks(big) + chunks(small), computed, "each size hashed once")
    assert.are.equal(chunks(big), hits)
    computed, hits = get_once(small)
    assert.are.equal(chunks(big) + chunks(small), computed)
    assert.are.equal(chunks(big) + chunks(small), hits, "both sizes kept")
    get_once(third) -- takes the place of the least recently used: 16 KiB
    computed = get_once(small)
    assert.are.equal(chunks(big) + chunks(small) + chunks(third), computed, "1408 still kept")
    computed = get_once(big)
    assert.are.equal(2 * chunks(big) + chunks(small) + chunks(third), computed, "16 KiB hashed again")
    server:close()
    H.rmrf(dir)
  end)
end)

describe("client engine with an output file that falls behind", function()
  it("hands a chunk back uncounted when on_chunk says EAGAIN, and takes it when fed again (csrc/test/client_test.c)", function()
    local code, out, err = H.run("make -s build/client_test && ./build/client_test")
    assert.are.equal(0, code, (out or "") .. (err or ""))
    assert.not_matches("FAILED", out)
    assert.matches("ok: nothing of it is counted, and the transfer goes on", out, 1, true)
    assert.matches("ok: fed again, it is taken", out, 1, true)
  end)
end)

describe("tree nodes that fail their hash", function()
  it("fail the fetch as corrupt (the server is dropped for it), not as a timeout", function()
    local content = H.bytes(CHUNK * 100, 3)
    local dir = H.tmpdir()
    finally(function() H.rmrf(dir) end)
    os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
    H.write(dir .. "/srv/f.bin", content)
    H.write(dir .. "/old.bin", content:sub(1, CHUNK * 50) .. ("x"):rep(CHUNK) .. content:sub(CHUNK * 51 + 1))
    local server = assert(core.server { dir = dir .. "/srv", sim = true })
    local client = assert(core.client { name = "f.bin", out = dir .. "/out", targets = { SERVER }, sim = true,
      chunk_size = CHUNK, unicast = true, basis = dir .. "/old.bin" })
    local function unhex(s) return (s:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end)) end
    local damaged = 0
    local final, events = H.simulate { client = client, servers = { [SERVER] = server }, max_time = 60,
      filter = function(pkt, from)
        local m = H.wire.decode(pkt)
        if from ~= SERVER or m.type ~= H.TYPE.DATA or m.flags & H.FLAG_TREE == 0 then return pkt end
        -- a node's children changed, under a chunk hash that matches the change
        damaged = damaged + 1
        local data = string.char(m.data:byte(1) ~ 1) .. m.data:sub(2)
        local h = unhex(core.sha256((">I4"):pack(m.index) .. data)):sub(1, 16)
        return pkt:sub(1, 16) .. (">I4I4"):pack(m.seq, m.index) .. h .. data
      end }
    client:close()
    server:close()
    assert.is_true(damaged > 0)
    assert.are.equal("corrupt", final and final.code, final and final.message)
    local dropped
    for _, ev in ipairs(events) do if ev.type == "drop" then dropped = ev.reason end end
    assert.are.equal("corrupt", dropped)
    assert.are.same({}, H.ls(dir .. "/out"), "no partial file of a corrupt version is kept")
  end)
end)
