-- A bounded flooder of unauthenticated REQUESTs, for measuring what they
-- cost a server (bench/flood.sh). Sends only to 127.0.0.1, from source
-- addresses 127.0.0.2 ... 127.0.0.N+1 (the legitimate client is
-- 127.0.0.1), never echoes a cookie, and stops after RATE * SECONDS
-- requests or SECONDS (at most 30), whichever comes first.
--
--   lua5.4 bench/flood.lua PORT MODE RATE SECONDS [SEED] [NAME] [SOURCES] [FOLDERS]
--
-- MODE: "tree-cs"  the listing of NAME (default ".") with its tree, at a
--                  new chunk size each time (64 ... 16384, steps of 16)
--       "folders"  listings of ".", d000, d001 ... in turn, FOLDERS (17) names:
--                  one more than a server that keeps 16 listings would hold
--       "file-cs"  the file NAME with its tree, at a new chunk size each time
-- RATE: requests per second, spread over the SOURCES source addresses (1).
local socket = require "socket"

local port = assert(tonumber(arg[1]), "port")
local mode = assert(arg[2], "mode")
local rate = assert(tonumber(arg[3]), "rate")
local seconds = math.min(assert(tonumber(arg[4]), "seconds"), 30)
local seed = tonumber(arg[5]) or 1
local name = arg[6] or "."
local nsrc = math.min(tonumber(arg[7]) or 1, 250)
local folders = tonumber(arg[8]) or 17
assert(mode == "tree-cs" or mode == "folders" or mode == "file-cs", "mode: tree-cs, folders or file-cs")
math.randomseed(seed)

local socks = {}
for i = 1, nsrc do
  local u = assert(socket.udp())
  assert(u:setsockname("127.0.0." .. (i + 1), 0))
  u:settimeout(0)
  socks[i] = u
end

local function request(xid, cs, kind, tree, what)
  local body = (">I4BBs2"):pack(cs, kind, tree and 1 or 0, what)
  body = body .. ("\0"):rep(math.max(0, 240 - #body))
  return (">BBBBBBI2I8"):pack(0x55, 0x58, 4, 1, 0, 0, #body, xid) .. body
end

-- The chunk sizes in a shuffled order: each is new to the server until all are used.
local sizes = {}
for cs = 64, 16384, 16 do sizes[#sizes + 1] = cs end
for i = #sizes, 2, -1 do
  local j = math.random(i)
  sizes[i], sizes[j] = sizes[j], sizes[i]
end

local count = math.floor(rate * seconds)
local t0 = socket.gettime()
local sent, replies = 0, 0
for n = 1, count do
  local due = t0 + (n - 1) / rate
  local wait = due - socket.gettime()
  if wait > 0 then socket.sleep(wait) end
  if socket.gettime() - t0 > seconds + 1 then break end
  local xid = math.random(1, 1 << 52)
  local pkt
  if mode == "tree-cs" then
    pkt = request(xid, sizes[(n - 1) % #sizes + 1], 1, true, name)
  elseif mode == "folders" then
    local k = (n - 1) % folders
    pkt = request(xid, 16384, 1, false, k == 0 and "." or ("d%03d"):format(k - 1))
  else
    pkt = request(xid, sizes[(n - 1) % #sizes + 1], 0, true, name)
  end
  local u = socks[(n - 1) % nsrc + 1]
  u:sendto(pkt, "127.0.0.1", port)
  sent = sent + 1
  for _, s in ipairs(socks) do
    while s:receive() do replies = replies + 1 end
  end
end
io.write(("flood: %s, %d requests in %.1f s, %d replies\n"):format(mode, sent, socket.gettime() - t0, replies))
