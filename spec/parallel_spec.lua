-- Several servers feeding one client, over the simulated link:
-- the work is split, balanced by delivery rate, and a server that dies or
-- lies does not hurt the result.
local H = require "spec.helper"
local core = H.core

local CHUNK = 256
local N = 3000
local A, B, C = "10.0.0.11:10526", "10.0.0.12:10526", "10.0.0.13:10526"

local function run(o)
  local dir = H.tmpdir()
  local content = o.content or H.bytes(CHUNK * N + 13, 99)
  local servers = {}
  for _, addr in ipairs(o.addrs or { A, B, C }) do
    local sdir = dir .. "/" .. addr:gsub("[.:]", "_")
    os.execute("mkdir -p " .. sdir)
    H.write(sdir .. "/f", (o.contents and o.contents[addr]) or content)
    servers[addr] = assert(core.server { dir = sdir, sim = true,
      corrupt_percent = o.corrupt and o.corrupt[addr], lie_percent = o.lie and o.lie[addr] })
  end
  for addr, fake in pairs(o.fakes or {}) do servers[addr] = fake end
  os.execute("mkdir -p " .. dir .. "/out")
  local targets = {}
  for addr in pairs(servers) do targets[#targets + 1] = addr end
  table.sort(targets)
  local client = assert(core.client { name = "f", out = dir .. "/out", targets = targets, sim = true,
    chunk_size = CHUNK, sha256 = o.sha256, exclude = o.exclude, verify = o.verify })
  local final, events, st = H.simulate { client = client, servers = servers, rates = o.rates,
    kill = o.kill, join = o.join, link = o.link, filter = o.filter, seed = o.seed or 1, max_time = 300 }
  local by = {}
  for _, s in ipairs(client:stats().servers) do by[s.server] = s end
  local got = H.read(dir .. "/out/f")
  client:close()
  for _, s in pairs(servers) do s:close() end
  H.rmrf(dir)
  return final, got, by, events, st, content
end

-- A hostile host in the simulation: answers every REQUEST with REPLY(xid),
-- at once (before any honest server can).
local function answerer(reply)
  local q = {}
  return {
    input = function(_, pkt, from)
      local m = H.wire.decode(pkt)
      if m and m.type == H.TYPE.REQUEST then
        for _, d in ipairs(reply(m.xid)) do q[#q + 1] = { d, from } end
      end
    end,
    output = function() local r = table.remove(q, 1); if r then return r[1], r[2] end end,
    drain = function() return {} end,
    deadline = function() return #q > 0 and 0 or nil end,
    close = function() end,
  }
end

-- A forger on the LAN: the Nth DATA from FROM has its chunk replaced by
-- other bytes and its short hash made to match them, as anyone can.
local function forge(from, n)
  local seen = 0
  return function(pkt, src)
    if src ~= from or pkt:byte(4) ~= H.TYPE.DATA or pkt:byte(5) ~= 0 then return pkt end
    seen = seen + 1
    if seen ~= n then return pkt end
    local index = (">I4"):unpack(pkt, 21)
    local data = pkt:sub(41):reverse()
    if data == pkt:sub(41) then data = ("x"):rep(#data) end
    local hex = H.core.sha256((">I4"):pack(index) .. data)
    local hash = hex:sub(1, 32):gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end)
    return pkt:sub(1, 24) .. hash .. data
  end
end

local function share(by, addr, total) return (by[addr] and by[addr].chunks or 0) / total end

describe("parallel servers", function()
  it("split the work: each sends different chunks", function()
    local final, got, by, _, _, content = run { rates = { [A] = 1e6, [B] = 1e6, [C] = 1e6 } }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    local total, dups = 0, 0
    for _, s in pairs(by) do total, dups = total + s.chunks, dups + s.dups end
    assert.are.equal(N + 1, total, "every chunk came once")
    assert.is_true(dups <= (N + 1) * 0.02, "endgame duplicates stay small: " .. dups)
    for _, addr in ipairs { A, B, C } do
      assert.is_true(math.abs(share(by, addr, total) - 1 / 3) < 0.08, addr .. " share " .. share(by, addr, total))
    end
  end)

  it("balance by delivery rate: a server twice as fast sends about twice the chunks", function()
    local final, got, by, _, st, content = run { rates = { [A] = 0.5e6, [B] = 1e6, [C] = 2e6 } }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    local total = N + 1
    assert.is_true(math.abs(share(by, A, total) - 1 / 7) < 0.05, "slow " .. share(by, A, total))
    assert.is_true(math.abs(share(by, B, total) - 2 / 7) < 0.06, "mid " .. share(by, B, total))
    assert.is_true(math.abs(share(by, C, total) - 4 / 7) < 0.06, "fast " .. share(by, C, total))
    -- ideal time: bytes on the wire / total rate; the tail does not wait on the slowest
    local ideal = (N + 1) * (CHUNK + 56) / 3.5e6
    local took = st.t - st.start_t
    assert.is_true(took < ideal * 1.25, ("took %.3fs of simulated time, ideal %.3fs"):format(took, ideal))
  end)

  it("do not leave the last chunks waiting on a much slower server", function()
    local final, _, by, _, st = run { rates = { [A] = 0.05e6, [B] = 2e6, [C] = 2e6 } }
    assert.are.equal("done", final.type, final.message)
    local ideal = (N + 1) * (CHUNK + 56) / 4.05e6
    local took = st.t - st.start_t
    assert.is_true(took < ideal * 1.25, ("took %.3fs of simulated time, ideal %.3fs"):format(took, ideal))
    assert.is_true((by[B].stolen + by[C].stolen) > 0, "the fast servers took over the slow one's chunks")
  end)

  it("move a dead server's chunks to the others and finish", function()
    local final, got, by, events, _, content = run { rates = { [A] = 1e6, [B] = 1e6, [C] = 1e6 }, kill = { [B] = 0.2 } }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    local dropped
    for _, ev in ipairs(events) do if ev.type == "drop" then dropped = ev end end
    assert.are.equal(B, dropped.server)
    assert.are.equal("silent", dropped.reason)
    assert.is_true(by[B].chunks > 0 and by[B].chunks < N / 2)
  end)

  it("let a server that answers a later discovery round join in", function()
    local final, got, by, _, _, content = run { rates = { [A] = 0.3e6, [B] = 0.3e6, [C] = 0.3e6 }, join = { [C] = 0.2 } }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.is_true(by[C].chunks > N / 10, "late server delivered " .. by[C].chunks)
  end)

  it("count, report and drop a server whose chunks fail verification, keeping its good ones", function()
    local final, got, by, events, _, content = run { rates = { [A] = 1e6, [B] = 1e6, [C] = 1e6 },
      corrupt = { [B] = 10 } }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.is_true(by[B].bad >= 8)
    assert.is_false(by[B].active)
    assert.are.equal("corrupt", by[B].dropped)
    assert.is_true(by[B].chunks > 0, "its verified chunks were kept")
    local reported = false
    for _, ev in ipairs(events) do reported = reported or (ev.type == "drop" and ev.server == B) end
    assert.is_true(reported)
  end)

  it("fail the whole-file check when a server lies (its chunk hashes match its wrong bytes)", function()
    local final, got, by = run { rates = { [A] = 1e6, [B] = 1e6, [C] = 1e6 }, lie = { [B] = 100 } }
    assert.are.equal("error", final.type)
    assert.are.equal("corrupt", final.code)
    assert.are.equal(0, by[B].bad, "every lie passed its chunk check")
    assert.is_true(by[B].chunks > 0)
    assert.is_nil(got, "nothing under the final name")
  end)

  it("blame no server for a chunk forged under one's address: the whole file fails, nobody dropped", function()
    local final, got, by = run { rates = { [A] = 1e6, [B] = 1e6 }, addrs = { A, B }, filter = forge(A, 100) }
    assert.are.equal("error", final.type)
    assert.are.equal("corrupt", final.code)
    assert.are.equal("whole-file SHA-256 mismatch", final.message)
    assert.is_nil(by[A].dropped)
    assert.is_nil(by[B].dropped)
    assert.is_nil(got, "nothing under the final name")
  end)

  it("checking each chunk against the tree (verify), catch a forged chunk at its leaf and finish", function()
    local final, got, by, _, _, content = run { rates = { [A] = 1e6, [B] = 1e6 }, addrs = { A, B },
      filter = forge(A, 100), verify = true }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.are.equal("corrupt", by[A].dropped, "the chunk under its address failed the agreed tree")
    assert.is_nil(by[B].dropped)
  end)

  it("ignore an excluded server: no vote, no chunks, and the others finish", function()
    local final, got, by, events, _, content = run { rates = { [A] = 1e6, [B] = 1e6, [C] = 1e6 },
      lie = { [C] = 100 }, exclude = { C } }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.are.equal(0, by[C].chunks)
    assert.is_false(by[C].active)
    for _, ev in ipairs(events) do assert.is_false(ev.type == "offer" and ev.server == C) end
    -- Three of five offer another version; two of those excluded, the other loses 2 to 1.
    local D, E = "10.0.0.14:10526", "10.0.0.15:10526"
    local other = H.bytes(CHUNK * N + 13, 1234)
    local final2, got2, by2, _, _, content2 = run { addrs = { A, B, C, D, E },
      contents = { [B] = other, [C] = other, [E] = other }, exclude = { B, C } }
    assert.are.equal("done", final2.type, final2.message)
    assert.is_true(got2 == content2, "the excluded votes did not count")
    assert.are.equal(0, by2[B].chunks + by2[C].chunks + by2[E].chunks)
  end)

  it("never mix versions: the one most servers offer wins", function()
    local other = H.bytes(CHUNK * N + 13, 1234)
    local final, got, by, events, _, content = run { contents = { [C] = other } }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
    assert.are.equal(0, by[C].chunks)
    local start
    for _, ev in ipairs(events) do if ev.type == "start" then start = ev end end
    assert.are.equal(2, start.versions)
    assert.are.equal(2, start.servers)
    assert.are.equal(3, start.offers)
  end)

  it("count one vote per host: three ports of one host do not outvote two hosts", function()
    local other = H.bytes(CHUNK * N + 13, 1234)
    local P1, P2, P3 = "10.0.0.66:1", "10.0.0.66:2", "10.0.0.66:3"
    local final, got, by, events, _, content = run { addrs = { A, B, P1, P2, P3 },
      contents = { [P1] = other, [P2] = other, [P3] = other } }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content, "the two hosts' version")
    assert.are.equal(0, by[P1].chunks + by[P2].chunks + by[P3].chunks)
    local start
    for _, ev in ipairs(events) do if ev.type == "start" then start = ev end end
    assert.are.equal(5, start.offers)
  end)

  for _, case in ipairs { { "refused", 2 }, { "stale", 3 }, { "not found", 1 }, { "an I/O error", 5 } } do
    it("finish when another host answers at once with " .. case[1] .. ": an ERROR ends only its sender's part", function()
      local X = "10.0.0.66:10526"
      local final, got, _, _, _, content = run { fakes = {
        [X] = answerer(function(xid) return { H.wire.error(xid, case[2], "\27[2Jno") } end) } }
      assert.are.equal("done", final.type, final.message)
      assert.is_true(got == content)
    end)
  end

  it("fail with 'refused' when only refusals come, their text made printable", function()
    local X = "10.0.0.66:10526"
    local final = run { addrs = {}, fakes = {
      [X] = answerer(function(xid) return { H.wire.error(xid, 2, "\27]0;owned\7\nudpxfer: fake line") } end) } }
    assert.are.equal("error", final.type)
    assert.are.equal("refused", final.code)
    assert.are.equal("server refused the name: \\x1b]0;owned\\x07\\x0audpxfer: fake line", final.message)
  end)

  it("take the version named by sha256, even from a minority", function()
    local other = H.bytes(CHUNK * N + 13, 1234)
    local final, got, by = run { contents = { [C] = other }, sha256 = core.sha256(other) }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == other)
    assert.are.equal(0, by[A].chunks + by[B].chunks)
  end)

  it("finish under 5% loss with three servers", function()
    local final, got, _, _, _, content = run { rates = { [A] = 1e6, [B] = 1e6, [C] = 1e6 }, link = { loss = 0.05 }, seed = 4 }
    assert.are.equal("done", final.type, final.message)
    assert.is_true(got == content)
  end)
end)
