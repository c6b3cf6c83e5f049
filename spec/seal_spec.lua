-- Shared-key mode (csrc/engine/seal.c): every datagram sealed, nothing
-- heard that does not open, replays refused; over the simulated link, and
-- from the command line over loopback.
local H = require "spec.helper"
local core = H.core

local SERVER = "10.0.0.1:10526"
local KEY = ("5a"):rep(32)
local OTHER = ("a5"):rep(32)
local CHUNK = 512
local SECRET = "the quick brown fox keeps a secret. "

local function sealed(pkt) return #pkt >= 16 and pkt:byte(1) == 0x55 and (pkt:byte(5) & 1) == 1 end

-- A keyed fetch over the simulated link. O: server_key, client_key, link,
-- filter, seed. Returns the final event, the bytes fetched, the client's
-- and the server's stats, the link counters.
local function fetch(content, o)
  local dir = H.tmpdir()
  os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
  H.write(dir .. "/srv/f.bin", content)
  local server = assert(core.server { dir = dir .. "/srv", sim = true, key = o.server_key, seed = o.seed })
  local client = assert(core.client { name = "f.bin", out = dir .. "/out", targets = { SERVER }, sim = true,
    chunk_size = CHUNK, unicast = true, key = o.client_key, seed = o.seed, discover_timeout = 2 })
  local final, _, st = H.simulate { client = client, servers = { [SERVER] = server }, link = o.link,
    filter = o.filter, seed = o.seed, max_time = 120 }
  local got, cst, sst = H.read(dir .. "/out/f.bin"), client:stats(), server:stats()
  client:close()
  server:close()
  H.rmrf(dir)
  return final, got, cst, sst, st
end

describe("shared-key mode over the simulated link", function()
  local content = (SECRET):rep(2000)

  it("fetches byte for byte; every datagram is sealed and none shows the file or its name", function()
    local seen, leaks = 0, 0
    local final, got = fetch(content, { server_key = KEY, client_key = KEY, filter = function(pkt)
      seen = seen + 1
      assert.is_true(sealed(pkt), "a datagram went out unsealed")
      if pkt:find("quick brown", 1, true) or pkt:find("f.bin", 1, true) then leaks = leaks + 1 end
      return pkt
    end })
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.is_true(seen > #content / CHUNK)
    assert.are.equal(0, leaks)
  end)

  for _, case in ipairs { { "the wrong key", OTHER }, { "no key", nil } } do
    it("a client with " .. case[1] .. " hears nothing: 'no server answered'", function()
      local final, got, _, sst = fetch(content, { server_key = KEY, client_key = case[2] })
      assert.are.equal("noserver", final.code)
      assert.is_nil(got)
      if case[2] then assert.is_true(sst.unauthentic > 0) else assert.is_true(sst.unauthentic == 0) end
    end)
  end

  it("a server reports what fails authentication once a minute per host and 16 hosts a minute at most", function()
    local dir = H.tmpdir()
    finally(function() H.rmrf(dir) end)
    local server = assert(core.server { dir = dir, sim = true, key = KEY })
    local function request(key)
      local c = assert(core.client { name = "x", out = dir, targets = { SERVER }, sim = true, key = key })
      local pkt = c:output(0)
      c:close()
      return pkt
    end
    local wrong, plain = request(OTHER), request(nil)
    local function reports()
      local t = {}
      for _, ev in ipairs(server:drain()) do
        if ev.type == "unauthentic" then t[#t + 1] = ev end
      end
      return t
    end
    for i = 1, 100 do server:input(wrong, "10.0.0.9:5000", i * 0.3) end
    for i = 1, 10 do server:input(plain, "10.0.0.9:5001", 30 + i * 0.1) end
    local r = reports()
    assert.are.equal(1, #r)
    assert.are.same({ "10.0.0.9:5000", 1, 0 }, { r[1].client, r[1].sealed, r[1].keyless })
    server:input(wrong, "10.0.0.9:5000", 61)
    r = reports()
    assert.are.equal(1, #r)
    assert.are.same({ 100, 10 }, { r[1].sealed, r[1].keyless }) -- all since the last report
    for h = 1, 40 do server:input(plain, ("10.0.1.%d:7"):format(h), 200 + h * 0.01) end
    assert.are.equal(16, #reports())
    server:close()
  end)

  it("a keyless server does not answer a keyed client", function()
    local final, _, _, sst = fetch(content, { client_key = KEY })
    assert.are.equal("noserver", final.code)
    assert.is_true(sst.malformed > 0, "sealed datagrams are not keyless ones")
  end)

  it("drops datagrams that fail authentication, counts them, and still finishes", function()
    local final, got, cst = fetch(content, { server_key = KEY, client_key = KEY, seed = 3,
      link = { corrupt = 0.05 } })
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.is_true(cst.unauthentic > 0, "damaged datagrams were counted")
    assert.are.equal(0, cst.bad, "none of them reached the chunk checks")
  end)

  it("refuses replays: duplicated datagrams never count twice", function()
    local final, got, cst = fetch(content, { server_key = KEY, client_key = KEY, seed = 5, link = { dup = 0.3 } })
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.are.equal(0, cst.dups, "a replayed DATA is refused before it is looked at")
    local kfinal, _, kst = fetch(content, { seed = 5, link = { dup = 0.3 } })
    assert.are.equal("done", kfinal.type)
    assert.is_true(kst.dups > 0, "keyless, the same link duplicates chunks")
  end)

  it("takes no forged chunk: DATA that does not open, from the server's address, is dropped", function()
    local injected = 0
    local final, got, cst = fetch(content, { server_key = KEY, client_key = KEY, filter = function(pkt, from)
      if from == SERVER and pkt:byte(4) == 5 and injected < 50 then
        injected = injected + 1
        local evil = pkt:sub(1, 28) .. ("\0"):rep(#pkt - 44) .. pkt:sub(-16) -- zeros, tag kept
        return evil
      end
      return pkt
    end })
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content, "the forged chunks were replaced by real ones")
    assert.are.equal(50, cst.unauthentic)
  end)
end)

describe("shared-key replays", function()
  it("a captured NEED opens nothing after 1,100 other sessions ended within its cookie's life", function()
    local dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/srv")
    H.write(dir .. "/srv/f.bin", SECRET:rep(100))
    H.write(dir .. "/srv/t.bin", "tiny")
    local server = assert(core.server { dir = dir .. "/srv", sim = true, key = KEY, seed = 4 })
    finally(function() server:close() H.rmrf(dir) end)
    local VICTIM = "10.0.0.2:40000"
    -- One keyed fetch (ON_PKT sees its datagrams); the client's CLOSEs are
    -- held back and handed to the server at the end, so its session ends.
    local function fetch(name, addr, seed, t, on_pkt)
      local c = assert(core.client { name = name, memory = true, targets = { SERVER }, sim = true, chunk_size = CHUNK,
        unicast = true, key = KEY, seed = seed, now = t, discover_timeout = 2 })
      local closes = {}
      local final, _, st = H.simulate { client = c, servers = { [SERVER] = server }, client_addr = addr, seed = seed,
        start = t, filter = function(pkt, from)
          if on_pkt then on_pkt(pkt, from) end
          if from == addr and pkt:byte(4) == H.TYPE.CLOSE then closes[#closes + 1] = pkt return nil end
          return pkt
        end }
      assert.are.equal("done", final and final.type, final and final.message)
      for _ = 1, 10 do
        local pkt = c:output(st.t)
        if not pkt then break end
        closes[#closes + 1] = pkt
      end
      for _, pkt in ipairs(closes) do server:input(pkt, addr, st.t) end
      assert.are.equal(0, server:stats().sessions, "the fetch's session ended")
      c:close()
      return st.t
    end
    local captured
    local t = fetch("f.bin", VICTIM, 1, 0, function(pkt, from)
      if from == VICTIM and pkt:byte(4) == H.TYPE.NEED and not captured then captured = pkt end
    end)
    assert.is_string(captured)
    for i = 1, 1100 do
      t = fetch("t.bin", ("10.2.%d.%d:5000"):format(i // 250, i % 250 + 1), 100 + i, t + 0.02)
    end
    assert.are.equal(0, server:stats().sessions)
    assert.is_true(t < 29, "all within the cookie's 30 s")
    server:input(captured, VICTIM, t)
    local sent = 0
    while server:output(t) do sent = sent + 1 end
    assert.are.equal(0, sent, "the replayed NEED made the server send")
    assert.are.equal(0, server:stats().sessions)
  end)
end)

describe("shared-key batches (files of a listing as one transfer)", function()
  local CLIENT, OTHER_HOST = "10.0.0.2:40000", "10.0.0.7:40000"
  local FILES = {} -- in listing order: secret-01 .. secret-12, numbers 0-11
  for i = 1, 12 do FILES[("secret-%02d"):format(i)] = SECRET:rep(i * 20) end
  local dir, server, listing, files

  before_each(function()
    dir = H.tmpdir()
    H.folder(dir .. "/srv", FILES)
    os.execute("mkdir -p " .. dir .. "/out")
    server = assert(core.server { dir = dir .. "/srv", sim = true, key = KEY, seed = 4 })
    listing, files = H.sim_listing({ [SERVER] = server }, SERVER, { key = KEY, chunk_size = CHUNK })
  end)
  after_each(function()
    server:close()
    H.rmrf(dir)
  end)

  -- A keyed sim batch of every file into DIR/out, run over the simulated
  -- link (O: filter, link, seed). Returns the final event, the files that
  -- landed holding their bytes, the batch's stats, and the batch (closed).
  local function run(o)
    local root = assert(core.dir(dir .. "/out"))
    local b = assert(core.batch { remote = ".", listing = listing, root = root, files = files, sim = true,
      targets = { SERVER }, key = KEY, seed = o.seed, chunk_size = CHUNK })
    o.batch = b
    local final, _, st = H.simulate { client = b, servers = { [SERVER] = server }, filter = o.filter,
      link = o.link, seed = o.seed, client_addr = CLIENT }
    local landed = 0
    for name, data in pairs(FILES) do
      if H.read(dir .. "/out/" .. name) == data then landed = landed + 1 end
    end
    local stats = b:stats()
    b:close()
    root:close()
    return final, landed, stats, st.t
  end

  -- What the server sends at NOW in answer, by type (the header is in clear).
  local function answers(now, to)
    local t = {}
    for pkt, dest in function() return server:output(now) end do
      if not to or dest == to then t[pkt:byte(4)] = (t[pkt:byte(4)] or 0) + 1 end
    end
    return t
  end

  it("moves every file sealed: no name, byte or selection in clear", function()
    local seen, leaks = 0, 0
    local final, landed = run { seed = 1, filter = function(pkt)
      seen = seen + 1
      assert.is_true(sealed(pkt), "a datagram went out unsealed")
      if pkt:find("quick brown", 1, true) or pkt:find("secret-", 1, true) or pkt:find(H.unhex(listing), 1, true) then
        leaks = leaks + 1
      end
      return pkt
    end }
    assert.are.equal("done", final.type, final.message)
    assert.are.equal(12, landed)
    assert.is_true(seen > 100)
    assert.are.equal(0, leaks)
  end)

  it("a captured batch REQUEST replayed later, or from another host, gets an offer at most: no session, no chunk", function()
    local request
    local final, _, _, t = run { seed = 2, filter = function(pkt, from)
      if from == CLIENT and pkt:byte(4) == H.TYPE.REQUEST then request = request or pkt end
      return pkt
    end }
    assert.are.equal("done", final.type, final.message)
    assert.is_string(request)
    assert.are.equal(0, server:stats().sessions)
    for _, from in ipairs { CLIENT, OTHER_HOST } do
      t = t + 1
      server:input(request, from, t)
      assert.are.same({ [H.TYPE.OFFER] = 1 }, answers(t))
      assert.are.equal(0, server:stats().sessions)
    end
  end)

  it("a captured batch NEED opens nothing: from another host while the batch runs, or after it ended", function()
    local need, to_other, sessions = nil, {}, nil
    local final, landed, _, t = run { seed = 3, filter = function(pkt, from, to, now)
      if from == CLIENT and pkt:byte(4) == H.TYPE.NEED then need = need or pkt end
      if to == OTHER_HOST then to_other[pkt:byte(4)] = (to_other[pkt:byte(4)] or 0) + 1 end
      if need and from == SERVER and pkt:byte(4) == H.TYPE.DATA and not sessions then
        server:input(need, OTHER_HOST, now)
        sessions = server:stats().sessions
      end
      return pkt
    end }
    assert.are.equal("done", final.type, final.message)
    assert.are.equal(12, landed)
    assert.are.equal(1, sessions, "the replay opened no session of its own")
    assert.is_nil(to_other[H.TYPE.DATA], "and had nothing sent to the other host")
    assert.are.equal(0, server:stats().sessions)
    server:input(need, CLIENT, t + 1)
    assert.are.same({}, answers(t + 1))
    assert.are.equal(0, server:stats().sessions)
  end)

  it("a batch's DATA replayed into it, or into another batch, changes nothing", function()
    local captured = {}
    local final = run { seed = 4, filter = function(pkt, from)
      if from == SERVER and pkt:byte(4) == H.TYPE.DATA then captured[#captured + 1] = pkt end
      return pkt
    end }
    assert.are.equal("done", final.type, final.message)
    os.execute("rm -f " .. dir .. "/out/*")
    -- a second batch (another transfer id and key) is fed the first's
    -- chunks; and its own, again, once it has moved on
    local own, o = {}, { seed = 5 }
    o.filter = function(pkt, from, _, now)
      if from == SERVER and pkt:byte(4) == H.TYPE.DATA then
        own[#own + 1] = pkt
        if #own == 1 then
          for _, c in ipairs(captured) do o.batch:input(c, SERVER, now) end
        elseif #own == 60 then
          for i = 1, 40 do o.batch:input(own[i], SERVER, now) end
        end
      end
      return pkt
    end
    local final2, landed, stats = run(o)
    assert.are.equal("done", final2.type, final2.message)
    assert.are.equal(12, landed)
    assert.is_true(#own > 60)
    assert.are.equal(#captured, stats.unauthentic, "the other batch's chunks do not open")
    assert.are.equal(0, stats.dups, "its own, replayed, are refused before they are looked at")
    assert.are.equal(stats.chunks, stats.have)
  end)

  it("forged DATA without the key is dropped: unsealed, or sealed with a tag that does not open", function()
    local forged, o = 0, { seed = 6 }
    o.filter = function(pkt, from, _, now)
      if from == SERVER and pkt:byte(4) == H.TYPE.DATA and forged < 20 then
        forged = forged + 1
        local xid = pkt:sub(9, 16)
        local plain = (">BBBBBBI2"):pack(0x55, 0x58, H.WIRE_VERSION, H.TYPE.DATA, H.FLAG_BARE, 0, 8 + CHUNK) .. xid
          .. (">I4I4"):pack(1, forged - 1) .. ("\0"):rep(CHUNK)
        o.batch:input(plain, SERVER, now)
        o.batch:input(pkt:sub(1, 28) .. ("\0"):rep(#pkt - 44) .. pkt:sub(-16), SERVER, now) -- zeros, tag kept
      end
      return pkt
    end
    local final, landed, stats = run(o)
    assert.are.equal("done", final.type, final.message)
    assert.are.equal(12, landed, "the forged chunks were not taken")
    assert.are.equal(20, forged)
    assert.are.equal(20, stats.unauthentic, "the sealed forgeries failed to open; the plain ones were not heard")
  end)
end)

describe("shared-key streams over the simulated link", function()
  it("moves the stream sealed; nothing forged reaches the output and no forged ack ends the sender", function()
    local data = H.bytes(300000, 8)
    local forged = 0
    local r = H.simulate_stream { data = data, sender = { key = KEY }, receiver = { key = KEY }, seed = 2,
      filter = function(pkt, from)
        assert.is_true(sealed(pkt), "a stream datagram went out unsealed")
        if from == H.RECEIVER and pkt:byte(4) == 10 and forged < 5 then
          forged = forged + 1
          -- an unsealed ack claiming everything, with the FIN flag
          local hdr = pkt:sub(1, 4) .. "\0\0" .. (">I2"):pack(18) .. pkt:sub(9, 16)
          return hdr .. (">I8I4I4BB"):pack(#data, 1 << 20, 0, 1, 0)
        end
        return pkt
      end }
    assert.are.equal("done", r.sender.type, r.sender.message)
    assert.are.equal("done", r.receiver.type, r.receiver.message)
    assert.is_true(r.data == data)
    assert.are.equal(5, forged)
  end)

  it("a sender with the wrong key never connects", function()
    local r = H.simulate_stream { data = "hello", sender = { key = OTHER, connect_timeout = 1 },
      receiver = { key = KEY, listen_timeout = 2 }, seed = 2 }
    assert.are.equal("noserver", r.sender.code)
    assert.are.equal("noserver", r.receiver.code)
  end)
end)

describe("shared-key mode from the command line", function()
  local dir
  setup(function() dir = H.tmpdir() end)
  teardown(function() H.rmrf(dir) end)

  it("keygen prints 64 fresh hex digits; get, ls, send and recv with --key-file work, and fail without", function()
    local code, out = H.run(H.UDPXFER .. " keygen")
    assert.are.equal(0, code)
    assert.matches("^%x+\n$", out)
    assert.are.equal(65, #out)
    assert.are_not.equal(out, select(2, H.run(H.UDPXFER .. " keygen")))
    H.write(dir .. "/key", out)
    os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
    H.write_random(dir .. "/srv/k.bin", 300000)
    local pid, port, pipe = H.start_server(dir .. "/srv", "--key-file " .. H.shell_quote(dir .. "/key"))
    finally(function() H.kill(pid) pipe:close() end)
    local base = ("%s %%s --port %d --server 127.0.0.1 --broadcast none "):format(H.UDPXFER, port)
    local rc, _, err = H.run(base:format("get k.bin") .. "-q -o " .. dir .. "/out/k.bin --key-file " .. dir .. "/key")
    assert.are.equal(0, rc, err)
    assert.is_true(H.read(dir .. "/out/k.bin") == H.read(dir .. "/srv/k.bin"))
    rc, _, err = H.run(base:format("get k.bin") .. "-q -o " .. dir .. "/out/no.bin --timeout 0.5")
    assert.are.equal(3, rc)
    assert.matches("no server answered", err)
    local lout
    rc, lout = H.run(base:format("ls") .. "--key-file " .. dir .. "/key")
    assert.are.equal(0, rc)
    assert.matches("k%.bin", lout)
    local rpid, rp = H.spawn(("%s recv --port 0 --bind 127.0.0.1 --key-file %s 2>&1 >%s"):format(H.UDPXFER,
      dir .. "/key", dir .. "/stream.out"))
    local rport = tonumber(rp:read("l"):match("UDP port (%d+)"))
    rc, _, err = H.run(("%s send 127.0.0.1:%d -q --key-file %s < %s"):format(H.UDPXFER, rport, dir .. "/key",
      dir .. "/srv/k.bin"))
    assert.are.equal(0, rc, err)
    rp:read("a")
    rp:close()
    assert.is_number(rpid)
    assert.is_true(H.read(dir .. "/stream.out") == H.read(dir .. "/srv/k.bin"))
  end)

  it("refuses a malformed key file and --legacy with a key, in one line, exit 2", function()
    H.write(dir .. "/bad", "not a key\n")
    local code, _, err = H.run(H.UDPXFER .. " get x --broadcast none --server 127.0.0.1 --key-file " .. dir .. "/bad")
    assert.are.equal(2, code)
    assert.matches("must hold 64 hex digits", err)
    H.write(dir .. "/good", KEY .. "\n")
    code, _, err = H.run(("%s serve %s --port 0 --legacy --key-file %s"):format(H.UDPXFER, dir, dir .. "/good"))
    assert.are.equal(2, code)
    assert.matches("^udpxfer: legacy mode cannot use a key", err)
    assert.are.equal(1, select(2, err:gsub("\n", "")))
    local t0 = H.core.now()
    code, _, err = H.run(H.UDPXFER .. " get x --broadcast none --server 127.0.0.1 --key-file /dev/zero")
    assert.are.equal(2, code)
    assert.matches("^udpxfer: %-%-key%-file /dev/zero must hold 64 hex digits", err)
    assert.is_true(H.core.now() - t0 < 5, "/dev/zero was read to no end")
  end)

  it("keygen -o KEY makes a key only its owner can read; to a file others can read, it warns", function()
    H.write(dir .. "/was-open", "old\n")
    os.execute("chmod 644 " .. dir .. "/was-open")
    for _, name in ipairs { "new-key", "was-open" } do
      local code, out, err = H.run(("%s keygen -o %s"):format(H.UDPXFER, dir .. "/" .. name))
      assert.are.same({ 0, "", "" }, { code, out, err })
      assert.matches("^%x+\n$", H.read(dir .. "/" .. name))
      assert.are.equal("600", H.sh("stat -c %a " .. dir .. "/" .. name):match("%d+"))
    end
    local code, _, err = H.run(("umask 022 && %s keygen > %s"):format(H.UDPXFER, dir .. "/open-key"))
    assert.are.equal(0, code)
    assert.matches("^udpxfer: warning: the key went to a file others can read %(mode 644%): chmod 600 it", err)
    local _, _, perr = H.run(H.UDPXFER .. " keygen | cat >/dev/null")
    assert.are.equal("", perr)
  end)

  it("a keyed server logs a client with the wrong key, or none, once per host and minute", function()
    H.write(dir .. "/k1", KEY .. "\n")
    H.write(dir .. "/k2", OTHER .. "\n")
    os.execute("mkdir -p " .. dir .. "/srv")
    local pid, port, pipe = H.start_server(dir .. "/srv", "--key-file " .. dir .. "/k1")
    local base = ("%s get x --port %d --server 127.0.0.1 --broadcast none --timeout 0.5 -q "):format(H.UDPXFER, port)
    local _, _, err = H.run(base .. "--key-file " .. dir .. "/k2")
    assert.matches("no server answered %(a server with another key stays silent: its log says so%)", err)
    H.run(base)
    H.kill(pid)
    local lines = {}
    for line in pipe:lines() do
      if line:find('"type":"unauthentic"', 1, true) then lines[#lines + 1] = require("dkjson").decode(line) end
    end
    pipe:close()
    assert.are.equal(1, #lines)
    assert.matches("^127%.0%.0%.1:", lines[1].client)
    assert.are.equal(1, lines[1].sealed)
  end)
end)
