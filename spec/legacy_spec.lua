-- Legacy wire mode: the original tool's protocol, both directions.
-- Packets are built and parsed here with string.pack, independently of the C
-- code, from the seed's description:
--   "get NAME"  ->  "except COUNT chunks HEX", then per chunk
--   struct.pack('!II{n}s32s', index, n, data, sha256(data))
-- Corner cases chosen: an empty file is "except 0 chunks <sha256 of nothing>"
-- and no chunk; a missing or refused name gets no answer (the old protocol
-- has no error message); a repeated request resends everything.
local H = require "spec.helper"
local core = H.core

local CLIENT, SERVER = "10.0.0.9:5555", "10.0.0.1:10526"

local function unhex(h) return (h:gsub("..", function(x) return string.char(tonumber(x, 16)) end)) end
local function chunk_packet(i, data) return (">I4I4"):pack(i, #data) .. data .. unhex(core.sha256(data)) end
local function parse_chunk(pkt)
  local i, n = (">I4I4"):unpack(pkt)
  return i, pkt:sub(9, 8 + n), pkt:sub(9 + n)
end

describe("legacy server", function()
  local dir, server

  before_each(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/srv")
    H.write(dir .. "/srv/a.txt", "alpha")
    H.write(dir .. "/srv/b.bin", H.bytes(2500, 1))
    H.write(dir .. "/srv/big", H.bytes(1024 * 200, 2))
    H.write(dir .. "/srv/empty", "")
    server = assert(core.server { dir = dir .. "/srv", sim = true, legacy = true })
  end)

  after_each(function()
    server:close()
    H.rmrf(dir)
  end)

  -- Everything the server sends from `from` on, stepping time by 1 ms
  -- (it paces legacy sends) until it has nothing left or 5 s pass.
  local function outputs(from)
    local out, now = {}, from or 0
    while now < (from or 0) + 5 do
      local pkt, to = server:output(now)
      if pkt then
        out[#out + 1] = { pkt = pkt, to = to }
      elseif not server:deadline() or server:stats().sessions == 0 then
        return out
      else
        now = now + 0.001
      end
    end
    return out
  end

  it("is off unless asked for", function()
    local plain = assert(core.server { dir = dir .. "/srv", sim = true })
    plain:input("get a.txt", CLIENT, 0)
    assert.is_nil((plain:output(0)))
    assert.are.equal(1, plain:stats().malformed)
    plain:close()
  end)

  it("answers get with except, then the chunk with its SHA-256", function()
    server:input("get a.txt", CLIENT, 0)
    local out = outputs(0)
    assert.are.equal(2, #out)
    assert.are.equal("except 1 chunks " .. core.sha256("alpha"), out[1].pkt)
    assert.are.equal(CLIENT, out[1].to)
    local i, data, hash = parse_chunk(out[2].pkt)
    assert.are.equal(0, i)
    assert.are.equal("alpha", data)
    assert.are.equal(unhex(core.sha256("alpha")), hash)
  end)

  it("sends every chunk once, 1024 bytes each, the last one shorter", function()
    server:input("get b.bin", CLIENT, 0)
    local out = outputs(0)
    assert.are.equal("except 3 chunks " .. core.sha256(H.bytes(2500, 1)), out[1].pkt)
    local got = {}
    for k = 2, #out do
      local i, data, hash = parse_chunk(out[k].pkt)
      assert.is_nil(got[i])
      assert.are.equal(unhex(core.sha256(data)), hash)
      got[i] = data
    end
    assert.are.equal(1024, #got[0])
    assert.are.equal(1024, #got[1])
    assert.are.equal(452, #got[2])
    assert.are.equal(H.bytes(2500, 1), got[0] .. got[1] .. got[2])
    local evs = server:drain()
    assert.are.equal("done", evs[#evs].type)
  end)

  it("shuffles the chunks", function()
    server:input("get big", CLIENT, 0)
    local order = {}
    for k, o in ipairs(outputs(0)) do if k > 1 then order[#order + 1] = (parse_chunk(o.pkt)) end end
    assert.are.equal(200, #order)
    local in_order = 0
    for k = 2, #order do if order[k] == order[k - 1] + 1 then in_order = in_order + 1 end end
    assert.is_true(in_order < 20)
  end)

  it("resends everything on a repeated request", function()
    server:input("get b.bin", CLIENT, 0)
    assert.are.equal(4, #outputs(0))
    server:input("get b.bin", CLIENT, 6)
    assert.are.equal(4, #outputs(6))
  end)

  it("paces what it sends", function()
    local slow = assert(core.server { dir = dir .. "/srv", sim = true, legacy = true, legacy_mbit = 8 })
    slow:input("get big", CLIENT, 0)
    local n = 0
    while slow:output(0) do n = n + 1 end
    assert.is_true(n <= 4, "a burst of about 2 ms at 1 MB/s, got " .. n)
    for ms = 1, 100 do
      while slow:output(ms / 1000) do n = n + 1 end
    end
    -- 1 MB/s for 0.1 s is about 94 datagrams of 1064 bytes, plus the first burst
    assert.is_true(n >= 90 and n <= 100, "about 100 KB in 0.1 s, got " .. n)
    slow:close()
  end)

  -- Bytes sent per destination host over SECONDS of simulated time, from START.
  local function sent_by_host(srv, start, seconds)
    local by = {}
    for ms = 0, seconds * 1000 do
      while true do
        local pkt, to = srv:output(start + ms / 1000)
        if not pkt then break end
        local host = to:match("^(.*):")
        by[host] = (by[host] or 0) + #pkt
      end
    end
    return by
  end

  it("bounds what spoofed gets can reflect: legacy_mbit per source, twice that in all", function()
    local srv = assert(core.server { dir = dir .. "/srv", sim = true, legacy = true, legacy_mbit = 8 })
    H.write(dir .. "/srv/huge", H.bytes(4 * 1024 * 1024, 3))
    -- 11-byte requests naming three victims, 20 times each, and other files too
    for k = 1, 20 do
      for v = 1, 3 do
        srv:input("get huge", ("10.9.0.%d:%d"):format(v, 4000 + k), 0)
        srv:input("get big", ("10.9.0.%d:%d"):format(v, 4000 + k), 0)
      end
    end
    assert.are.equal(16, srv:stats().sessions, "at most 16 legacy sessions")
    local by = sent_by_host(srv, 0, 1)
    local total = 0
    for host, n in pairs(by) do
      assert.is_true(n <= 1e6 * 1.05 + 8192, ("%s got %d bytes in 1 s at 1 MB/s per source"):format(host, n))
      total = total + n
    end
    assert.is_true(total <= 2e6 * 1.05 + 8192, ("%d bytes in all in 1 s, at most 2 MB/s"):format(total))
    srv:close()
  end)

  it("starts a transfer over on a repeated get only after 2 s", function()
    -- an "except" line is what a (re)started transfer begins with
    local function excepts(now)
      local n = 0
      for ms = 0, 50 do
        while true do
          local pkt = server:output(now + ms / 1000)
          if not pkt then break end
          n = n + (pkt:match("^except ") and 1 or 0)
        end
      end
      return n
    end
    H.write(dir .. "/srv/huge2", H.bytes(8 * 1024 * 1024, 4))
    server:input("get huge2", CLIENT, 0)
    assert.are.equal(1, excepts(0))
    server:input("get huge2", CLIENT, 0.5)
    assert.are.equal(0, excepts(0.5), "the repeat within 2 s is ignored")
    server:input("get huge2", CLIENT, 2.5)
    assert.are.equal(1, excepts(2.5), "a repeat after 2 s starts over")
  end)

  it("describes an empty file as 0 chunks", function()
    server:input("get empty", CLIENT, 0)
    local out = outputs(0)
    assert.are.equal(1, #out)
    assert.are.equal("except 0 chunks " .. core.sha256(""), out[1].pkt)
  end)

  it("stays silent for a missing or refused name", function()
    for _, name in ipairs { "missing", "../../etc/passwd", "/etc/passwd" } do
      server:input("get " .. name, CLIENT, 0)
      assert.are.same({}, outputs(0), name)
    end
  end)
end)

describe("legacy client", function()
  local dir

  before_each(function()
    dir = H.tmpdir()
    os.execute("mkdir -p " .. dir .. "/out " .. dir .. "/srv")
  end)
  after_each(function() H.rmrf(dir) end)

  it("fetches from a hand-built legacy peer, skipping a bad chunk and asking again", function()
    local content = H.bytes(3000, 5)
    local parts = { [0] = content:sub(1, 1024), content:sub(1025, 2048), content:sub(2049) }
    local c = assert(core.client { name = "f", out = dir .. "/out", targets = { SERVER }, sim = true, legacy = true })
    local req = c:output(0)
    assert.are.equal("get f", req)
    c:input("except 3 chunks " .. core.sha256(content), SERVER, 0.001)
    c:input(chunk_packet(2, parts[2]), SERVER, 0.002)
    local bad = chunk_packet(0, parts[0])
    c:input(bad:sub(1, 20) .. "X" .. bad:sub(22), SERVER, 0.003) -- corrupted in transit
    c:input(chunk_packet(1, parts[1]), SERVER, 0.004)
    assert.are.equal(1, c:stats().bad)
    -- chunks stop: after a second it asks for the file again
    assert.is_nil((c:output(0.5)))
    local again, to = c:output(c:deadline())
    assert.are.equal("get f", again)
    assert.are.equal(SERVER, to)
    c:input(chunk_packet(0, parts[0]), SERVER, 1.1)
    local evs = c:drain()
    assert.are.equal("done", evs[#evs].type, evs[#evs].message)
    assert.are.equal(3000, evs[#evs].size)
    assert.is_true(H.read(dir .. "/out/f") == content)
    c:close()
  end)

  it("fetches from our legacy server through 10% loss", function()
    local content = H.bytes(1024 * 50 + 7, 8)
    H.write(dir .. "/srv/f", content)
    local server = assert(core.server { dir = dir .. "/srv", sim = true, legacy = true })
    local c = assert(core.client { name = "f", out = dir .. "/out", targets = { SERVER }, sim = true, legacy = true })
    local final = H.simulate { client = c, servers = { [SERVER] = server }, link = { loss = 0.1 }, seed = 3 }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(H.read(dir .. "/out/f") == content)
    c:close()
    server:close()
  end)

  it("fails with no file when the whole-file hash does not match", function()
    local c = assert(core.client { name = "f", out = dir .. "/out", targets = { SERVER }, sim = true, legacy = true })
    c:output(0)
    c:input("except 1 chunks " .. core.sha256("something else"), SERVER, 0.001)
    c:input(chunk_packet(0, "data"), SERVER, 0.002)
    local evs = c:drain()
    assert.are.equal("corrupt", evs[#evs].code)
    assert.are.same({}, H.ls(dir .. "/out"))
    c:close()
  end)
end)

describe("legacy mode on the command line", function()
  it("serve --legacy and get --legacy move files over loopback", function()
    local later = H.cleanups(finally)
    local dir = H.tmpdir()
    later(function() H.rmrf(dir) end)
    os.execute("mkdir -p " .. dir .. "/srv " .. dir .. "/out")
    H.write_random(dir .. "/srv/f", 300000)
    H.write(dir .. "/srv/empty", "")
    local pid, port, pipe = H.start_server(dir .. "/srv", "--legacy")
    later(function() H.kill(pid) pipe:close() end)
    for _, name in ipairs { "f", "empty" } do
      local code, out, err = H.run(("%s get %s --legacy --port %d --broadcast 127.255.255.255 --out %s")
        :format(H.UDPXFER, name, port, dir .. "/out"))
      assert.are.equal(0, code, err)
      assert.are.equal(dir .. "/out/" .. name .. "\n", out)
      assert.is_true(H.read(dir .. "/srv/" .. name) == H.read(dir .. "/out/" .. name))
    end
  end)
end)
