-- Stream mode. The engines over a simulated link (loss,
-- reordering, duplication, corruption, a late receiver, a dying sender, a
-- slow reader), hand-built hostile datagrams, and udpxfer.send/recv over
-- loopback. The command line is in cli_spec.lua.
local H = require "spec.helper"
local core = H.core

local EMPTY_SHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

local function transfer(data, o)
  o = o or {}
  o.data = data
  o.max_time = o.max_time or 300
  return H.simulate_stream(o)
end

local function assert_delivered(r, data)
  assert.are.equal("done", r.receiver and r.receiver.type, r.receiver and r.receiver.message)
  assert.are.equal("done", r.sender and r.sender.type, r.sender and r.sender.message)
  assert.are.equal(#data, #r.data)
  assert.is_true(r.data == data, "the bytes arrive unchanged and in order")
  assert.are.equal(core.sha256(data), r.receiver.sha256)
  assert.are.equal(#data, r.receiver.bytes)
end

describe("stream engine over a simulated link", function()
  it("sends an empty stream: set-up, FIN with the SHA-256 of nothing, teardown", function()
    local r = transfer("")
    assert_delivered(r, "")
    assert.are.equal(EMPTY_SHA, r.receiver.sha256)
    assert.are.same({ "connect", "complete", "done" },
      { r.events.receiver[1].type, r.events.receiver[2].type, r.events.receiver[3].type })
    assert.are.equal(r.events.sender[1].id, r.events.receiver[1].id, "both sides agree on the connection id")
    assert.matches("^%x+$", r.events.sender[1].id)
  end)

  it("sends one byte", function()
    assert_delivered(transfer("x"), "x")
  end)

  it("is binary-safe: NUL bytes, every byte value, invalid UTF-8", function()
    local all = {}
    for i = 0, 255 do all[#all + 1] = string.char(i) end
    local data = ("\0\0\255\254\192\128\237\160\128"):rep(100) .. table.concat(all):rep(50) .. "\0"
    assert_delivered(transfer(data), data)
  end)

  for _, loss in ipairs { 0.10, 0.30 } do
    it(("delivers every byte in order at %d%% loss, both ways"):format(loss * 100), function()
      local data = H.bytes(400000, 11)
      local r = transfer(data, { link = { loss = loss }, seed = 5 })
      assert_delivered(r, data)
      assert.is_true(r.link.dropped > 0)
      assert.is_true(r.sender_stats.retransmitted_bytes > 0, "what was lost was sent again")
      assert.is_true(r.sender_stats.retransmitted_bytes < 2 * #data, "and not everything many times")
    end)
  end

  it("copes with reordering, duplication, corruption and truncation", function()
    local data = H.bytes(300000, 3)
    local r = transfer(data, { link = { reorder = 0.3, dup = 0.1, corrupt = 0.02, truncate = 0.01 }, seed = 9 })
    assert_delivered(r, data)
    assert.is_true(r.link.corrupt > 0 and r.link.dup > 0)
    assert.is_true(r.receiver_stats.dropped > 0, "damaged datagrams were refused")
    assert.is_true(r.receiver_stats.dups > 0, "duplicates were recognised")
  end)

  it("connects to a receiver started after the sender", function()
    local data = H.bytes(50000, 1)
    local opens = 0
    local r = transfer(data, { receiver_at = 2.0, filter = function(pkt)
      if pkt:byte(4) == 7 then opens = opens + 1 end
      return pkt
    end })
    assert_delivered(r, data)
    assert.is_true(opens >= 4, "the sender kept asking (" .. opens .. " OPENs) until the receiver came")
    assert.are.equal("connect", r.events.sender[1].type)
    assert.is_true(r.t >= 2.0)
  end)

  it("gives up connecting after the timeout when no receiver appears", function()
    local r = transfer("abc", { receiver_at = 1e9, sender = { connect_timeout = 3 }, max_time = 10 })
    assert.are.equal("error", r.sender.type)
    assert.are.equal("noserver", r.sender.code)
    assert.matches("no receiver answered", r.sender.message)
  end)

  it("reports a broken stream when the sender dies mid-stream", function()
    local data = H.bytes(2000000, 4)
    local r = transfer(data, { kill_sender = 0.01, receiver = { idle_timeout = 1 },
      link = { delay = 0.002 } })
    assert.is_nil(r.sender, "the sender never finished")
    assert.are.equal("error", r.receiver.type)
    assert.are.equal("broken", r.receiver.code)
    assert.matches("broken stream", r.receiver.message)
    assert.is_true(#r.data < #data)
    assert.is_true(r.data == data:sub(1, #r.data), "what was written is an exact prefix")
  end)

  it("keeps a quiet connection alive with probes", function()
    -- The sender has nothing to send for 5 s (its application is slow);
    -- keep-alives must stop the receiver from calling it broken after 1 s.
    local r = transfer("", { receiver = { idle_timeout = 1 }, max_time = 20, finish_at = 5 })
    assert_delivered(r, "")
    assert.is_true(r.t >= 5)
  end)

  it("flow control: a slow reader with a small buffer loses nothing", function()
    local data = H.bytes(600000, 8)
    local r = transfer(data, { receiver = { buffer = 65536 }, read_limit = 20000 })
    assert_delivered(r, data)
    assert.are.equal(0, r.receiver_stats.dropped, "the sender kept within the advertised window")
    assert.are.equal(0, r.sender_stats.retransmitted_bytes)
  end)

  it("refuses a stream whose FIN hash is wrong, and both ends say so", function()
    local data = H.bytes(5000, 2)
    local r = transfer(data, { filter = function(pkt)
      if pkt:byte(4) == 11 then -- S_FIN: flip a bit of the SHA-256
        return pkt:sub(1, -2) .. string.char(pkt:byte(-1) ~ 1)
      end
      return pkt
    end })
    assert.are.equal("corrupt", r.receiver.code)
    assert.are.equal("corrupt", r.sender.code)
  end)
end)

describe("stream receiver against hand-built datagrams", function()
  local function hdr(typ, xid, body)
    return (">BBBBBBI2I8"):pack(0x55, 0x58, H.WIRE_VERSION, typ, 0, 0, #body, xid) .. body
  end
  -- An OPEN (padded to 256 bytes unless PAD is false), echoing COOKIE if given.
  local function open(xid, pad, cookie)
    local body = (">I2B"):pack(1360, cookie and 1 or 0) .. (cookie or ("\0"):rep(16))
    return hdr(7, xid, body .. ("\0"):rep(pad == false and 0 or 240 - #body + 2))
  end
  local function outputs(obj, now)
    local list = {}
    while true do
      local p, to = obj:output(now)
      if not p then return list end
      list[#list + 1] = { p = p, to = to }
    end
  end
  -- The cookie of an ACCEPT that asks for one, or nil.
  local function cookie_of(p)
    if p:byte(4) ~= 8 or p:byte(27) ~= 1 then return nil end
    return p:sub(28, 43)
  end
  -- Complete the handshake for XID from FROM; returns what came back last.
  local function connect(r, xid, from, now)
    r:input(open(xid), from, now or 0)
    local c = cookie_of(assert(outputs(r, now or 0)[1]).p)
    r:input(open(xid, true, c), from, now or 0)
    return outputs(r, now or 0)
  end

  it("answers a padded OPEN with a cookie no larger, and ignores an unpadded one", function()
    local r = core.receiver { sim = true }
    r:input(open(77, false), H.SENDER, 0)
    assert.are.same({}, outputs(r, 0))
    r:input(open(77), H.SENDER, 0)
    local out = outputs(r, 0)
    assert.are.equal(1, #out)
    assert.are.equal(8, out[1].p:byte(4))
    assert.is_truthy(cookie_of(out[1].p), "an ACCEPT asking for its cookie back")
    assert.is_true(#out[1].p * 3 <= 256)
    assert.are.equal(H.SENDER, out[1].to)
    assert.are.same({}, r:drain(), "not connected yet")
    r:close()
  end)

  it("takes its one slot only for an OPEN that echoes the cookie sent to its address", function()
    local r = core.receiver { sim = true }
    r:input(open(1), "10.0.0.66:1", 0) -- spoofed: the cookie goes to the victim
    local spoofed = cookie_of(outputs(r, 0)[1].p)
    r:input(open(1, true, ("\0"):rep(16)), "10.0.0.66:1", 0)
    r:input(open(1, true, spoofed), "10.0.0.67:1", 0) -- the cookie from another address
    assert.are.same({}, r:drain(), "no connection")
    for _, o in ipairs(outputs(r, 0)) do assert.is_truthy(cookie_of(o.p), "only cookies answer") end
    -- probes of the unproven connection get nothing back
    local body = (">I4I8"):pack(1, 0) .. ("\0"):rep(32) .. "hello"
    r:input(hdr(9, 1, body), "10.0.0.66:1", 0)
    assert.are.same({}, outputs(r, 0))
    local out = connect(r, 2, H.SENDER)
    assert.are.equal(8, out[1].p:byte(4))
    assert.is_nil(cookie_of(out[1].p), "connected")
    assert.are.equal("connect", r:drain()[1].type)
    r:close()
  end)

  it("serves one stream at a time: a second sender that proves its address is told it is busy", function()
    local r = core.receiver { sim = true }
    connect(r, 1, H.SENDER)
    local out = connect(r, 2, "10.0.0.9:5555")
    assert.are.equal(1, #out)
    assert.are.equal(12, out[1].p:byte(4), "S_CLOSE")
    assert.are.equal("10.0.0.9:5555", out[1].to)
    assert.are.equal(3, (">I2"):unpack(out[1].p, 17), "reason busy")
    r:close()
  end)

  it("drops data for another connection id or with a bad segment hash", function()
    local r = core.receiver { sim = true }
    connect(r, 5, H.SENDER)
    local body = (">I4I8"):pack(1, 0) .. ("\0"):rep(32) .. "hello"
    r:input(hdr(9, 5, body), H.SENDER, 0.001)   -- right id, wrong hash
    r:input(hdr(9, 6, body), H.SENDER, 0.001)   -- wrong id
    r:input(hdr(9, 5, body), "10.0.0.3:1", 0.001) -- right id, wrong address
    assert.are.equal("", r:read(0.001))
    assert.are.equal(3, r:stats().dropped)
    r:close()
  end)

  it("a busy sender gets a clear error", function()
    local s = core.sender { peer = H.RECEIVER, sim = true }
    local p = s:output(0)
    local xid = select(8, (">BBBBBBI2I8"):unpack(p))
    s:input(hdr(12, xid, (">I2"):pack(3)), H.RECEIVER, 0.001)
    local ev = s:drain()
    assert.are.equal("error", ev[1].type)
    assert.are.equal("busy", ev[1].code)
    s:close()
  end)
end)

describe("udpxfer.send / udpxfer.recv over loopback", function()
  local function run_pair(r, s, limit)
    return H.drive({ r, s }, function() return r.outcome ~= nil and s.outcome ~= nil end, limit or 30)
  end

  it("moves a 3 MiB string; callbacks, the connection id and results agree", function()
    local data = H.bytes(3 * 1048576, 21)
    local seen = {}
    local r = assert(H.udpxfer.recv { port = 0, bind = "127.0.0.1",
      on_connect = function(ev) seen.rconn = ev.id end,
      on_complete = function() seen.complete = true end })
    local s = assert(H.udpxfer.send { host = "127.0.0.1", port = r:port(), data = data,
      on_connect = function(ev) seen.sconn = ev.id end })
    assert.is_true(run_pair(r, s))
    local rres = assert(r:result())
    local sres = assert(s:result())
    assert.is_true(rres.data == data)
    assert.are.equal(sres.sha256, rres.sha256)
    assert.are.equal(seen.rconn, seen.sconn)
    assert.is_true(seen.complete)
    r:close()
    s:close()
    s:close() -- idempotent
  end)

  it("hands bytes to on_data in order, and the callbacks may yield", function()
    local data = H.bytes(500000, 5)
    local parts, yields = {}, 0
    local r = assert(H.udpxfer.recv { port = 0, bind = "127.0.0.1",
      on_data = function(b) parts[#parts + 1] = b coroutine.yield() end })
    local s = assert(H.udpxfer.send { host = "127.0.0.1", port = r:port(), data = data })
    local co = coroutine.wrap(function() return run_pair(r, s) end)
    while co() == nil do yields = yields + 1 end
    assert.is_true(yields > 0)
    assert.is_true(table.concat(parts) == data)
    r:close()
    s:close()
  end)

  it("logs SEND/RECV lines through on_log", function()
    local lines = {}
    local r = assert(H.udpxfer.recv { port = 0, bind = "127.0.0.1",
      on_log = function(l) lines[#lines + 1] = l end })
    local s = assert(H.udpxfer.send { host = "127.0.0.1", port = r:port(), data = "hi" })
    assert.is_true(run_pair(r, s))
    local text = table.concat(lines, "\n")
    assert.matches("RECV 0 0 %x+ SYN", text)
    assert.matches("SEND 0 0 %x+ SYN ACK", text)
    assert.matches("RECV 2 0 %x+ FIN", text)
    assert.matches("SEND 0 2 %x+ ACK FIN", text)
    r:close()
    s:close()
  end)

  it("programmer mistakes raise; runtime failures return nil, message, code", function()
    assert.has_error(function() H.udpxfer.send {} end)
    assert.has_error(function() core.sender { peer = "nonsense", sim = true } end)
    local r = assert(H.udpxfer.recv { port = 0, bind = "127.0.0.1" })
    local r2, msg, code = H.udpxfer.recv { port = r:port(), bind = "127.0.0.1" }
    assert.is_nil(r2)
    assert.matches("in use", msg)
    assert.are.equal("inuse", code)
    local s = assert(H.udpxfer.send { host = "127.0.0.1", port = r:port(), data = "" })
    assert.has_error(function() s.obj:read() end)
    r:close()
    s:close()
    assert.has_error(function() r.obj:stats() end, "stream is closed")
  end)
end)
