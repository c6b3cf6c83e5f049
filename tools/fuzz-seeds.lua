-- Writes the fuzz targets' seed corpus (csrc/fuzz/corpus/<target>/):
-- valid datagrams, and for the stateful targets sequences of records
-- (csrc/fuzz/fuzz_common.h) that drive a session through its paths.
-- Run from the checkout: lua5.4 tools/fuzz-seeds.lua
local ROOT = "csrc/fuzz/corpus/"
local VERSION = 5
local T = { REQUEST = 1, OFFER = 2, ERROR = 3, NEED = 4, DATA = 5, CLOSE = 6, OPEN = 7, ACCEPT = 8,
  S_DATA = 9, S_ACK = 10, FIN = 11, S_CLOSE = 12 }
local XID = 0x0102030405060708

local function dgram(typ, body, flags)
  return (">BBBBBBI2I8"):pack(0x55, 0x58, VERSION, typ, flags or 0, 0, #body, XID) .. body
end

-- A record: OP (bit 0 the live id, bit 1 repaired, bit 2 the second peer, bits 3-7 ms).
local function rec(op, pkt) return (">BI2"):pack(op, #pkt) .. pkt end

local function write(target, name, data)
  os.execute("mkdir -p " .. ROOT .. target)
  local f = assert(io.open(ROOT .. target .. "/" .. name, "wb"))
  f:write(data)
  f:close()
end

local zeros = function(n) return ("\0"):rep(n) end

-- ---- the file protocol ----
local function request(name, flags) return dgram(T.REQUEST, (">I4BBs2"):pack(256, 0, flags or 0, name) .. zeros(230)) end
-- RATE (KiB/s) paces the session: its queue outlasts a record
local function need(ranges, seq, tree, rate)
  local body = (">I4I4"):pack(1, 256) .. zeros(16) .. (">I4I4I2"):pack(seq or 1, rate or 0, #ranges)
  for _, r in ipairs(ranges) do body = body .. (">I4I4"):pack(r[1], r[2]) end
  return dgram(T.NEED, body, tree and 2 or 0)
end
local function data(index, len, seq, tree)
  return dgram(T.DATA, (">I4I4"):pack(seq or 1, index) .. zeros(16) .. ("x"):rep(len), tree and 2 or 0)
end

-- ---- batches: files of a listing (kind 2), the selection after the name ----
local LISTING = "LLLL" .. zeros(28) -- the fuzz provider's listing (fuzz_common.h)
local function selection(ranges, listing)
  local t = { listing or LISTING, (">I2"):pack(#ranges) }
  for _, r in ipairs(ranges) do t[#t + 1] = (">I4I4"):pack(r[1], r[2]) end
  return table.concat(t)
end
-- SEL_LEN: what the length field says (default the selection's own)
local function files_request(sel, cs, sel_len, flags, nonce)
  local body = (">I4BBs2"):pack(cs or 256, 2, flags or 0, ".") .. (">I2"):pack(sel_len or #sel) .. sel .. (nonce or "")
  return dgram(T.REQUEST, body .. zeros(math.max(0, 240 - #body)))
end
local function bare(index, len, seq) return dgram(T.DATA, (">I4I4"):pack(seq or 1, index) .. ("x"):rep(len), 0x10) end
local function err(code, text) return dgram(T.ERROR, (">I2s2"):pack(code, text)) end
local close = dgram(T.CLOSE, (">I2"):pack(0))
local offer = dgram(T.OFFER, (">I8I4I4I4"):pack(2567, 64, 41, 1) .. ("Z"):rep(32) .. ("\17"):rep(16) .. "\0")

local many = {} -- 120 ranges: a selection's most
for i = 0, 119 do many[#many + 1] = { 3 * i, 2 } end

-- one datagram each, for fuzz_wire
for name, pkt in pairs {
  request = request("file.bin", 1), offer = offer, need = need({ { 0, 2 }, { 3, 1 } }),
  data = data(0, 100), error = err(1, "not found"), close = close,
  legacy_get = "get file.bin", legacy_except = "except 3 chunks " .. ("ab"):rep(32),
  files_request = files_request(selection { { 0, 40 }, { 100, 10 } }),
  files_request_keyed = files_request(selection { { 7, 1 } }, 1392, nil, 2, ("\9"):rep(16)),
  files_request_most = files_request(selection(many)),
  selection = selection { { 0, 3 }, { 5, 2 }, { 4000, 90 } },
  bare_data = bare(3, 64, 2),
} do write("fuzz_wire", name, pkt) end

-- the client: every chunk in order, then shuffled with loss, tree nodes, errors
local all, shuffled = "\0", "\5"
for i = 0, 40 do all = all .. rec(3, data(i, i == 40 and 7 or 64, 1)) end
for _, i in ipairs { 3, 1, 0, 7, 2, 9, 4, 40, 6, 5, 8 } do shuffled = shuffled .. rec(3 + 8 * (i % 3), data(i, i == 40 and 7 or 64, 2)) end
write("fuzz_client", "in_order", all)
write("fuzz_client", "two_servers_shuffled", shuffled)
local descent = rec(3, data(0, 64, 1, true)) .. rec(3, data(1, 64, 2, true)) .. rec(3, data(2, 64, 2, true))
write("fuzz_client", "tree", "\1" .. descent .. rec(3, data(15, 64, 3)) .. rec(3, data(16, 64, 3)))
write("fuzz_client", "verify", "\3" .. descent .. rec(3, data(0, 64, 3)) .. rec(3, data(40, 7, 3)))
write("fuzz_client", "errors", "\4" .. rec(1, err(2, "refused\27[31m")) .. rec(5, err(4, "busy")) .. rec(1, err(3, "stale")))
write("fuzz_client", "late_offer", "\0" .. rec(5, offer) .. rec(3, data(2, 64, 1)) .. rec(1 + 8 * 31, data(3, 64, 9)))
write("fuzz_client", "legacy", "\8" .. rec(0, "except 3 chunks " .. ("ab"):rep(32))
  .. rec(0, (">I4I4"):pack(0, 1024) .. ("x"):rep(1024) .. zeros(32)))
-- a batch (bit 4): 22 bare chunks, repaired to their length in the layout
local batch_all = "\16"
for i = 0, 21 do batch_all = batch_all .. rec(3, bare(i, 64, 1)) end
write("fuzz_client", "batch_in_order", batch_all)
local batch_two = "\20"
for _, i in ipairs { 5, 0, 21, 2, 9, 1, 14, 3, 4, 20, 6, 8, 7 } do batch_two = batch_two .. rec(3 + 4 * (i % 2) + 8 * (i % 3), bare(i, 64, 2)) end
write("fuzz_client", "batch_two_servers", batch_two)
write("fuzz_client", "batch_odd", "\16" .. rec(3, bare(0, 64, 1)) .. rec(1, bare(1, 36, 1)) .. rec(3, data(2, 64, 1))
  .. rec(3, bare(22, 64, 1)) .. rec(1, bare(3, 0, 1)) .. rec(1, err(4, "busy")) .. rec(3 + 8 * 31, bare(4, 64, 9))
  .. rec(1, err(3, "file changed")))

-- the server: NEEDs for chunks and tree nodes, repeats, a CLOSE, other hosts
write("fuzz_server", "need_all", "\0" .. rec(3, need({ { 0, 20 } }, 1)) .. rec(3 + 8 * 10, need({ { 5, 3 } }, 2))
  .. rec(3, need({ { 19, 1 } }, 3)) .. rec(1, close))
write("fuzz_server", "tree", "\1" .. rec(3, need({ { 0, 1 } }, 1, true)) .. rec(3, need({ { 0, 4 } }, 2)))
write("fuzz_server", "other_host", "\4" .. rec(7, need({ { 0, 4 } }, 1)) .. rec(5, request("f", 0))
  .. rec(3, need({ { 0, 4 } }, 1)) .. rec(3, need({ { 0, 4 } }, 1)))
write("fuzz_server", "legacy", "\2" .. rec(0, "get f") .. rec(0 + 8 * 31, "get f") .. rec(4, "get f"))
write("fuzz_server", "requests", "\0" .. rec(1, request("f", 1)) .. rec(1, request("../etc/passwd"))
  .. rec(1, dgram(T.REQUEST, (">I4BBs2"):pack(256, 1, 0, "") .. zeros(230))))
-- small work budgets: requests from a host not proven run them out, a NEED proves it, then a second's refill
local budget = "\5"
for _ = 1, 6 do budget = budget .. rec(1, request("f", 1)) .. rec(5, request("f", 1)) end
write("fuzz_server", "budgets", budget .. rec(3, need({ { 0, 2 } }, 1)) .. rec(1, request("f", 1))
  .. rec(1 + 8 * 31, request("f", 1)) .. rec(1, request("f", 1)))
-- a batch (bit 3, files 0-39 and 100-109): NEEDs over its chunks, then,
-- with chunks still queued (paced at 100 KiB/s), another host's request
-- for another selection takes its place: the session must end
write("fuzz_server", "batch_needs", "\8" .. rec(3, need({ { 0, 20 } }, 1)) .. rec(3 + 8 * 5, need({ { 20, 40 } }, 2))
  .. rec(3, need({ { 60, 30 }, { 95, 9 } }, 3)) .. rec(1, close))
write("fuzz_server", "batch_replaced", "\8" .. rec(3, need({ { 0, 60 } }, 1, false, 100))
  .. rec(5 + 8 * 10, files_request(selection { { 200, 5 } })) .. rec(1 + 8 * 20, err(1, "time passes"))
  .. rec(3 + 8, need({ { 60, 10 } }, 2, false, 100))
  .. rec(1, files_request(selection { { 0, 40 }, { 100, 10 } })) .. rec(3 + 8 * 31, need({ { 0, 4 } }, 3)))
write("fuzz_server", "batch_requests", "\8" .. rec(1, files_request(selection {}))
  .. rec(1, files_request(selection { { 0, 5 }, { 3, 2 } })) .. rec(1, files_request(selection { { 4090, 10 } }))
  .. rec(1, files_request(selection { { 1, 0xffffffff } })) .. rec(1, files_request(selection(many)))
  .. rec(1, files_request(selection({ { 0, 1 } }, ("\1"):rep(32)))) .. rec(1, files_request(selection { { 0, 1 } }, 256, 600))
  .. rec(1, files_request(selection { { 0, 3 } }, 64)) .. rec(3, need({ { 0, 3 } }, 1)))
write("fuzz_server", "batch_caps", "\12" .. rec(3, need({ { 0, 8 } }, 1)) .. rec(7, need({ { 0, 8 } }, 1))
  .. rec(5, files_request(selection { { 0, 40 }, { 100, 10 } })) .. rec(3 + 8 * 31, need({ { 8, 8 } }, 2)))

for name, pkt in pairs {
  open = dgram(T.OPEN, (">I2B"):pack(1360, 0) .. zeros(229)),
  accept = dgram(T.ACCEPT, (">I2I4I4B"):pack(1360, 65536, 10000, 1) .. ("\7"):rep(16)),
  fin = dgram(T.FIN, (">I4I8"):pack(9, 20000) .. zeros(32)),
  s_close = dgram(T.S_CLOSE, (">I2"):pack(2)),
} do write("fuzz_wire", name, pkt) end

-- streams: segments, acks with SACK, FIN, CLOSE, a second OPEN
local function sdata(off, len, tx) return dgram(T.S_DATA, (">I4I8"):pack(tx, off) .. zeros(32) .. ("y"):rep(len)) end
local function sack(cum, spans)
  local body = (">I8I4I4BB"):pack(cum, 65536, 3, 0, #spans)
  for _, s in ipairs(spans) do body = body .. (">I8I8"):pack(s[1], s[2]) end
  return dgram(T.S_ACK, body)
end
write("fuzz_stream", "segments", "\1" .. rec(3, sdata(0, 1360, 1)) .. rec(3, sdata(2720, 1360, 3))
  .. rec(3, sdata(1360, 1360, 2)) .. rec(1, dgram(T.FIN, (">I4I8"):pack(4, 4080) .. zeros(32))))
write("fuzz_stream", "acks", "\6" .. rec(5, sack(1360, { { 2720, 4080 } })) .. rec(5 + 8 * 5, sack(4080, {}))
  .. rec(5, sack(0, { { 5440, 6800 }, { 8160, 9520 } })))
write("fuzz_stream", "close", "\0" .. rec(1, dgram(T.S_CLOSE, (">I2"):pack(1))) .. rec(5, dgram(T.S_CLOSE, (">I2"):pack(3))))
write("fuzz_stream", "open_again", "\11" .. rec(0, dgram(T.OPEN, (">I2B"):pack(1360, 0) .. zeros(229)))
  .. rec(1 + 8 * 31, sdata(0, 100, 1)))
write("fuzz_wire", "s_data", sdata(1360, 200, 2))
write("fuzz_wire", "s_ack", sack(1360, { { 2720, 4080 }, { 5440, 6800 } }))
print("seeds written under " .. ROOT)
