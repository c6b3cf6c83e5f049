-- The server engine against hand-built (and hostile) datagrams.
local H = require "spec.helper"
local core = H.core
local wire = H.wire

local CLIENT = "10.0.0.9:5555"

local function outputs(server, now)
  local out = {}
  while true do
    local pkt, to = server:output(now or 0)
    if not pkt then return out end
    out[#out + 1] = { pkt = pkt, to = to, msg = H.wire.decode(pkt) }
  end
end

describe("server engine", function()
  local dir, server

  before_each(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/srv/sub " .. dir .. "/outside")
    H.write(dir .. "/srv/a.txt", "alpha")
    H.write(dir .. "/srv/sub/b.txt", "beta")
    H.write(dir .. "/outside/secret", "secret")
    os.execute("ln -s ../outside/secret " .. dir .. "/srv/link")
    server = assert(core.server { dir = dir .. "/srv", sim = true })
  end)

  after_each(function()
    server:close()
    H.rmrf(dir)
  end)

  local function ask(name, xid, pad)
    server:input(wire.request(xid or 1, name, 1024, pad), CLIENT, 0)
    return outputs(server)
  end

  it("offers a file with its size, chunking and SHA-256", function()
    local out = ask("a.txt", 77)
    assert.are.equal(1, #out)
    local m = out[1].msg
    assert.are.equal(H.TYPE.OFFER, m.type)
    assert.are.equal(77, m.xid, "the reply echoes the request id")
    assert.are.equal(CLIENT, out[1].to)
    assert.are.equal(5, m.size)
    assert.are.equal(1, m.chunks)
    assert.are.equal(core.sha256("alpha"), (m.sha256:gsub(".", function(c) return ("%02x"):format(c:byte()) end)))
  end)

  it("serves files in subdirectories", function()
    assert.are.equal(H.TYPE.OFFER, ask("sub/b.txt")[1].msg.type)
  end)

  for _, name in ipairs { "../../etc/passwd", "/etc/passwd", "sub/../a.txt", "./a.txt", "a.txt\0.jpg",
    "sub//b.txt", "sub/", "..", "link" } do
    it(("refuses the name %q"):format(name), function()
      local out = ask(name)
      assert.are.equal(1, #out)
      assert.are.equal(H.TYPE.ERROR, out[1].msg.type)
      assert.are.equal(2, out[1].msg.code, "REFUSED")
      local ev = server:drain()[1]
      assert.are.equal("refused", ev.status)
    end)
  end

  it("says not found for a missing file and for a directory", function()
    assert.are.equal(1, ask("missing")[1].msg.code)
    assert.are.equal(1, ask("sub")[1].msg.code)
  end)

  it("never answers with more than 3x the bytes of an unproven request", function()
    H.write(dir .. "/srv/a", "alpha")
    local tiny = wire.request(5, "a", 1024, false)
    assert.is_true(#tiny * 3 < 85, "an offer (85 bytes) would be over 3x this request")
    server:input(tiny, CLIENT, 0)
    assert.are.same({}, outputs(server), "an offer would be over 3x a tiny request")
    server:input(wire.request(6, "a", 1024, false, 0, 1), CLIENT, 0)
    assert.are.same({}, outputs(server), "nor one with a tree root")
    local padded = wire.request(5, "a.txt", 1024)
    server:input(padded, CLIENT, 0)
    local out = outputs(server)
    assert.are.equal(1, #out)
    assert.is_true(#out[1].pkt <= 3 * #padded)
  end)

  it("paces a session's chunks at the rate its NEED asks for", function()
    H.write(dir .. "/srv/big", H.bytes(100 * 256, 5))
    server:input(wire.request(4, "big", 256), CLIENT, 0)
    local offer = outputs(server)[1].msg
    -- 1000 KiB/s: one 296-byte datagram per 289 us, after a burst of 2 ms at most
    server:input(wire.need(4, offer.handle, 256, offer.cookie, 1, { { 0, 100 } }, 1000), CLIENT, 0)
    local first = #outputs(server, 0)
    assert.is_true(first >= 1 and first <= 10, first .. " sent at once")
    assert.are.equal(0, #outputs(server, 0.0001), "nothing more before the gap")
    local d = server:deadline()
    assert.is_true(d > 0 and d < 0.001, "the next send is due within the gap")
    local later = 0
    for t = 1, 100 do later = later + #outputs(server, t / 10000) end
    assert.is_true(math.abs(later - 10000 / 289) <= 2, later .. " sent in the next 10 ms")
    local rest = 0
    for t = 101, 1000 do rest = rest + #outputs(server, t / 10000) end
    assert.are.equal(100 - first - later, rest)
  end)

  it("sends no data for a NEED without the cookie from its offer", function()
    local offer = ask("a.txt", 9)[1].msg
    local forged = ("\0"):rep(16)
    server:input(wire.need(9, offer.handle, 1024, forged, 1, { { 0, 1 } }), CLIENT, 0)
    local out = outputs(server)
    for _, o in ipairs(out) do assert.are_not.equal(H.TYPE.DATA, o.msg.type) end
    -- the real cookie from a different address is refused too (spoofed source)
    server:input(wire.need(9, offer.handle, 1024, offer.cookie, 1, { { 0, 1 } }), "10.0.0.66:5555", 0)
    for _, o in ipairs(outputs(server)) do assert.are_not.equal(H.TYPE.DATA, o.msg.type) end
    -- and from the right address it streams
    server:input(wire.need(9, offer.handle, 1024, offer.cookie, 1, { { 0, 1 } }), CLIENT, 0)
    local data = outputs(server)
    assert.are.equal(1, #data)
    assert.are.equal(H.TYPE.DATA, data[1].msg.type)
    assert.are.equal("alpha", data[1].msg.data)
  end)

  it("hashes a file once, and again only when it changes", function()
    ask("a.txt", 1)
    ask("a.txt", 2)
    ask("a.txt", 3)
    assert.are.equal(1, server:stats().files_hashed)
    H.write(dir .. "/srv/a.txt", "alpha, changed")
    local m = ask("a.txt", 4)[1].msg
    assert.are.equal(2, server:stats().files_hashed)
    assert.are.equal(14, m.size)
  end)

  it("refuses a stale cookie after the file changed", function()
    local offer = ask("a.txt", 9)[1].msg
    H.write(dir .. "/srv/a.txt", "different content")
    server:input(wire.need(9, offer.handle, 1024, offer.cookie, 1, { { 0, 1 } }), CLIENT, 0)
    local out = outputs(server)
    assert.are.equal(1, #out)
    assert.are.equal(H.TYPE.ERROR, out[1].msg.type)
    assert.are.equal(3, out[1].msg.code, "STALE")
  end)

  it("counts malformed datagrams and keeps serving", function()
    for _, junk in ipairs { "", "x", ("\255"):rep(40), "UX\1\1\0\0\0\5" .. ("\0"):rep(8),
      wire.request(1, "a.txt"):sub(1, 20) } do
      server:input(junk, CLIENT, 0)
    end
    assert.are.same({}, outputs(server))
    assert.are.equal(5, server:stats().malformed)
    assert.are.equal(H.TYPE.OFFER, ask("a.txt")[1].msg.type)
  end)

  it("sends the requested chunks of a NEED in shuffled order", function()
    H.write(dir .. "/srv/big", H.bytes(64 * 200, 3))
    server:input(wire.request(3, "big", 64), CLIENT, 0)
    local offer = outputs(server)[1].msg
    server:input(wire.need(3, offer.handle, 64, offer.cookie, 1, { { 0, 200 } }), CLIENT, 0)
    local order, seen = {}, {}
    for _, o in ipairs(outputs(server)) do
      order[#order + 1] = o.msg.index
      seen[o.msg.index] = true
    end
    assert.are.equal(200, #order)
    for i = 0, 199 do assert.is_true(seen[i]) end
    local in_order = 0
    for i = 2, #order do if order[i] == order[i - 1] + 1 then in_order = in_order + 1 end end
    assert.is_true(in_order < 20, "order is shuffled")
  end)

  it("ends a session on CLOSE and reports it", function()
    local offer = ask("a.txt", 12)[1].msg
    server:input(wire.need(12, offer.handle, 1024, offer.cookie, 1, { { 0, 1 } }), CLIENT, 0)
    outputs(server)
    assert.are.equal(1, server:stats().sessions)
    server:input(wire.close(12), CLIENT, 0)
    assert.are.equal(0, server:stats().sessions)
    local evs = server:drain()
    assert.are.equal("done", evs[#evs].type)
    assert.are.equal("complete", evs[#evs].reason)
    assert.are.equal("a.txt", evs[#evs].name)
  end)

  -- A NEED for chunk 0 of OFFER under XID from ADDR at NOW: the datagrams sent back.
  local function need(offer, xid, addr, now)
    server:input(wire.need(xid, offer.handle, 1024, offer.cookie, 1, { { 0, 1 } }), addr or CLIENT, now or 0)
    return outputs(server, now or 0)
  end

  local function types(out)
    local t = {}
    for _, o in ipairs(out) do t[#t + 1] = o.msg.type end
    return t
  end

  it("takes a cookie for a new session only within 30 s of its offer", function()
    local offer = ask("a.txt", 20)[1].msg
    assert.are.same({ H.TYPE.ERROR }, types(need(offer, 20, CLIENT, 31)), "too old")
    assert.are.equal(0, server:stats().sessions)
    server:input(wire.request(21, "a.txt", 1024), CLIENT, 40)
    offer = outputs(server, 40)[1].msg
    assert.are.same({ H.TYPE.DATA }, types(need(offer, 21, CLIENT, 69)), "29 s after its offer")
  end)

  it("opens nothing, and says nothing, for the cookie of a session that ended, by CLOSE or idle", function()
    local offer = ask("a.txt", 22)[1].msg
    assert.are.same({ H.TYPE.DATA }, types(need(offer, 22)))
    server:input(wire.close(22), CLIENT, 0)
    assert.are.same({}, types(need(offer, 22, CLIENT, 1)), "after CLOSE: a spent cookie is not answered")
    assert.are.equal(0, server:stats().sessions)
    offer = ask("a.txt", 23)[1].msg
    assert.are.same({ H.TYPE.DATA }, types(need(offer, 23)))
    local d = server:deadline()
    outputs(server, d) -- it idles out
    assert.are.equal(0, server:stats().sessions)
    assert.is_true(d < 30.5)
    assert.is_nil(types(need(offer, 23, CLIENT, d))[2])
    assert.are.equal(0, server:stats().sessions, "no session from a spent cookie")
  end)

  it("refuses an ended session's cookie for its whole life, however many sessions end meanwhile", function()
    local offer = ask("a.txt", 30)[1].msg
    assert.are.same({ H.TYPE.DATA }, types(need(offer, 30)))
    server:input(wire.close(30), CLIENT, 0)
    -- 1,100 other sessions open and end within the cookie's 30 s
    for i = 1, 1100 do
      local t = i / 50
      local addr = ("10.1.%d.%d:7000"):format(i // 250, i % 250 + 1)
      server:input(wire.request(1000 + i, "a.txt", 1024), addr, t)
      local o = outputs(server, t)[1].msg
      assert.are.same({ H.TYPE.DATA }, types(need(o, 1000 + i, addr, t)))
      server:input(wire.close(1000 + i), addr, t)
    end
    assert.are.equal(0, server:stats().sessions)
    assert.are.same({}, types(need(offer, 30, CLIENT, 29)), "the replay opens nothing, and is not answered")
    assert.are.equal(0, server:stats().sessions)
    assert.are.equal(1101, server:stats(29).cookies_remembered)
    assert.are.equal(1101 - 50 * 2, server:stats(32).cookies_remembered, "each goes once it has expired")
  end)

  it("lets one client host hold a quarter of the sessions; other hosts still get theirs", function()
    server:close()
    server = assert(core.server { dir = dir .. "/srv", sim = true, max_sessions = 8 })
    local got = {}
    for port = 1, 8 do
      local addr = "10.0.0.9:" .. (6000 + port)
      server:input(wire.request(100 + port, "a.txt", 1024), addr, 0)
      local offer = outputs(server)[1].msg
      local out = need(offer, 100 + port, addr)
      got[#got + 1] = out[1].msg.type == H.TYPE.DATA and "data" or out[1].msg.code
    end
    assert.are.same({ "data", "data", 4, 4, 4, 4, 4, 4 }, got, "2 sessions, then BUSY")
    server:input(wire.request(200, "a.txt", 1024), "10.0.0.10:7000", 0)
    local offer = outputs(server)[1].msg
    assert.are.same({ H.TYPE.DATA }, types(need(offer, 200, "10.0.0.10:7000")))
    assert.are.equal(3, server:stats().sessions)
  end)

  it("answers one host's requests at most host_requests per second", function()
    server:close()
    server = assert(core.server { dir = dir .. "/srv", sim = true, host_requests = 10 })
    for xid = 1, 30 do server:input(wire.request(xid, "a.txt", 1024), CLIENT, 0) end
    assert.are.equal(10, #outputs(server, 0))
    server:input(wire.request(31, "a.txt", 1024), "10.0.0.10:7000", 0)
    assert.are.equal(1, #outputs(server, 0), "another host is answered")
    for xid = 32, 40 do server:input(wire.request(xid, "a.txt", 1024), CLIENT, 0.5) end
    assert.are.equal(5, #outputs(server, 0.5), "half a second refills half the bucket")
    assert.are.equal(24, server:stats().limited)
  end)

  it("caps what it sends to one host (host_rate) and in all (max_rate)", function()
    server:close()
    H.write(dir .. "/srv/big", H.bytes(400 * 1024, 9))
    server = assert(core.server { dir = dir .. "/srv", sim = true, host_rate = 100 * 1024, max_rate = 150 * 1024 })
    local sent = {}
    for i, addr in ipairs { CLIENT, "10.0.0.10:7000", "10.0.0.10:7001" } do
      server:input(wire.request(i, "big", 1024), addr, 0)
      local offer = outputs(server)[1].msg
      server:input(wire.need(i, offer.handle, 1024, offer.cookie, 1, { { 0, 400 } }), addr, 0)
    end
    for t = 0, 1000 do
      for _, o in ipairs(outputs(server, t / 1000)) do
        local host = o.to:match("^(.*):")
        sent[host] = (sent[host] or 0) + #o.pkt
      end
    end
    local a, b = sent["10.0.0.9"], sent["10.0.0.10"]
    assert.is_true(a + b <= 150 * 1024 * 1.02 + 4096, ("%d bytes in all in 1 s"):format(a + b))
    assert.is_true(a + b >= 150 * 1024 * 0.95, ("%d bytes in all in 1 s"):format(a + b))
    assert.is_true(b <= 100 * 1024 * 1.02 + 4096, ("%d bytes to the host with two sessions"):format(b))
  end)

  it("keeps at most 256 files open however many are asked for, and closes a deleted one", function()
    os.execute("mkdir -p " .. dir .. "/srv/many")
    for i = 1, 400 do H.write(("%s/srv/many/f%03d"):format(dir, i), "file " .. i) end
    for i = 1, 400 do
      local m = ask(("many/f%03d"):format(i), 1000 + i)[1].msg
      assert.are.equal(H.TYPE.OFFER, m.type)
    end
    assert.is_true(server:stats().files_open <= 256, server:stats().files_open .. " open")
    local open = server:stats().files_open
    os.remove(dir .. "/srv/many/f400")
    assert.are.equal(1, ask("many/f400", 2000)[1].msg.code, "not found once deleted")
    assert.are.equal(open - 1, server:stats().files_open, "its descriptor is closed")
  end)

  it("ends idle sessions", function()
    local offer = ask("a.txt", 13)[1].msg
    server:input(wire.need(13, offer.handle, 1024, offer.cookie, 1, { { 0, 1 } }), CLIENT, 0)
    outputs(server, 0)
    assert.are.equal(1, server:stats().sessions)
    local d = server:deadline()
    assert.is_true(d > 0 and d <= 31)
    outputs(server, d)
    assert.are.equal(0, server:stats().sessions)
  end)
end)

describe("server work budgets", function()
  local MiB = 1024 * 1024
  local RATE = 8 * MiB -- work units per second in all: 1 MiB/s for unproven hosts together, 4 MiB/s per proven host
  local dir, server

  before_each(function()
    dir = H.tmpdir()
    for d = 0, 79 do
      os.execute(("mkdir -p %s/srv/f%02d && cd %s/srv/f%02d && head -c 320 /dev/urandom | split -b 16 -a 2 - x")
        :format(dir, d, dir, d))
    end
    H.write_random(dir .. "/srv/big", 2 * MiB)
    server = assert(core.server { dir = dir .. "/srv", sim = true, work_rate = RATE })
  end)

  after_each(function()
    server:close()
    H.rmrf(dir)
  end)

  -- Every datagram out at NOW, decoded.
  local function replies(now)
    local out = {}
    while true do
      local pkt = server:output(now)
      if not pkt then return out end
      out[#out + 1] = wire.decode(pkt)
    end
  end

  -- REQUEST NAME (KIND 0 a file, 1 a listing) at chunk size CS from ADDR at NOW, with the tree.
  local function ask(xid, name, kind, cs, addr, now)
    server:input(wire.request(xid, name, cs, true, kind, 1), addr, now)
    return replies(now)[1]
  end

  it("serves hosts not proven from what is computed, and computes within their shared budget", function()
    local T, N = 20, 2000
    local offers, rootless, preparing = 0, 0, 0
    for i = 1, N do
      local now = i * T / N
      local addr = ("10.9.%d.%d:6000"):format(i % 7, i % 250 + 1) -- forged addresses: none echoes a cookie
      local cs = 1024 + 16 * (i % 900)
      local m
      if i % 3 == 0 then
        m = ask(i, ".", 1, cs, addr, now) -- the listing's tree at a new chunk size
      elseif i % 3 == 1 then
        m = ask(i, ("f%02d"):format(i // 3 % 80), 1, 1024, addr, now) -- more folders than listings kept
      else
        m = ask(i, "big", 0, cs, addr, now) -- a file's tree at a new chunk size
      end
      if m and m.type == H.TYPE.OFFER then
        offers = offers + 1
        if not m.root then rootless = rootless + 1 end
      elseif m and m.type == H.TYPE.ERROR and m.code == 6 then
        preparing = preparing + 1
      end
    end
    local st = server:stats()
    -- Their budgets (a sixteenth of the rate for listings, as much for
    -- trees: a second's worth and the rate) and one job begun in each (a
    -- tree of big: 2 MiB and 128 units a chunk; the listing of ".": 1,681
    -- entries), plus what is done once (the tree's first scan, 16 KiB an
    -- entry, and every file's SHA-256 and opening) and opening and
    -- checking a file or a folder's events for each request.
    local bound = 2 * RATE / 16 * (T + 1) + (2 * MiB + 2048 * 128) + 1681 * 1024
      + 1681 * 16384 + (2 * MiB + 1600 * (16 + 4096)) + N * 4096
    assert.is_true(st.work <= bound, ("%d work units, bound %d"):format(st.work, bound))
    assert.are.equal(N, offers + preparing, "every request answered")
    assert.is_true(rootless > N / 3, rootless .. " offers without a root: a tree not computed")
    assert.is_true(preparing > 0 and st.work_deferred == preparing, preparing .. " told to ask again")
    assert.is_true(st.listings_bytes < 16 * MiB)
  end)

  it("keeps what a proven client uses, and computes for it within its own budget", function()
    local CLIENT2 = "10.0.0.77:7000"
    -- the client proves its address: it echoes the cookie of an offer
    local m = ask(1, "f00", 1, 2048, CLIENT2, 0)
    assert.are.equal(H.TYPE.OFFER, m.type)
    server:input(wire.need(1, m.handle, 2048, m.cookie, 1, { { 0, 1 } }), CLIENT2, 0)
    replies(0)
    -- the big file's tree at its chunk size, made for it and used by it,
    -- once the server's budget has paid for the tree's first scan
    m = ask(2, "big", 0, 2048, CLIENT2, 5)
    assert.are.equal(H.TYPE.OFFER, m.type)
    assert.is_string(m.root, "a proven host's tree is made within its budget")
    server:input(wire.need(2, m.handle, 2048, m.cookie, 1, { { 0, 1 } }, 0, true), CLIENT2, 5)
    replies(5)
    local built = server:stats().trees_built
    -- a flood of trees at other chunk sizes, from forged addresses, for 60 s
    for i = 1, 600 do
      ask(100 + i, "big", 0, 4096 + 16 * i, ("10.9.1.%d:6000"):format(i % 250 + 1), 5 + i / 10)
    end
    assert.is_true(server:stats().trees_built - built <= 60 + 1, "at most the shared budget's worth")
    built = server:stats().trees_built
    m = ask(3, "big", 0, 2048, CLIENT2, 66)
    assert.is_string(m.root)
    assert.are.equal(built, server:stats().trees_built, "its tree was kept: not built again")
  end)
end)
