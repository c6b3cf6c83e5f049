--- Shared test helpers: paths, temporary folders, a deterministic simulated
-- link for the engines, hand-built wire packets, process control.
package.path = "lua/?.lua;lua/?/init.lua;" .. package.path
package.cpath = (os.getenv("UDPXFER_CPATH") or "lua/?.so") .. ";" .. package.cpath

local H = {}
H.udpxfer = require "udpxfer"
H.core = H.udpxfer.core

local function sh(cmd)
  local p = assert(io.popen(cmd))
  local out = p:read("a")
  p:close()
  return out
end
H.sh = sh

function H.shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

--- Cleanups for one test, run after it, last first. Busted's `finally`
-- keeps only the function it was given last, so a test with more than one
-- thing to undo registers one finally through this: `local later =
-- H.cleanups(finally)`, then `later(fn)` for each.
function H.cleanups(finally)
  local list = {}
  finally(function()
    for i = #list, 1, -1 do
      local ok, err = pcall(list[i])
      if not ok then io.stderr:write("cleanup failed: ", tostring(err), "\n") end
    end
  end)
  return function(fn) list[#list + 1] = fn end
end

--- A fresh temporary directory.
function H.tmpdir()
  return (sh("mktemp -d /tmp/udpxfer-spec.XXXXXX"):gsub("%s+$", ""))
end

function H.rmrf(path)
  assert(path:match("^/tmp/udpxfer%-spec%."), "refusing to remove " .. path)
  os.execute("rm -rf " .. H.shell_quote(path))
end

function H.write(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

function H.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local d = f:read("a")
  f:close()
  return d
end

--- Deterministic pseudo-random bytes (seeded), for simulated files.
function H.bytes(n, seed)
  local rng = seed or 12345
  local parts = {}
  for i = 1, n do
    rng = (rng * 1103515245 + 12345) % 2147483648
    parts[i] = string.char((rng >> 16) & 255)
  end
  return table.concat(parts)
end

--- Write N bytes of /dev/urandom to path (for large files).
function H.write_random(path, n)
  os.execute(("head -c %d /dev/urandom > %s"):format(n, H.shell_quote(path)))
end

--- A sparse file of SIZE bytes at PATH: holes but for random bytes at each
-- { offset, length } of DATA.
function H.write_sparse(path, size, data)
  local q = H.shell_quote(path)
  os.execute(("rm -f %s && truncate -s %d %s"):format(q, size, q))
  for _, d in ipairs(data) do
    os.execute(("head -c %d /dev/urandom | dd of=%s bs=65536 iflag=fullblock oflag=seek_bytes seek=%d "
      .. "conv=notrunc status=none"):format(d[2], q, d[1]))
  end
end

--- Bytes of disk PATH takes: its blocks.
function H.allocated(path)
  local blocks, unit = sh("stat -c '%b %B' " .. H.shell_quote(path)):match("(%d+) (%d+)")
  return tonumber(blocks) * tonumber(unit)
end

--- The type of what is at PATH, not following a link ("regular file", "directory", "symbolic link", "fifo").
function H.file_type(path)
  return (sh("stat -c %F " .. H.shell_quote(path)):gsub("%s+$", ""))
end

--- Names in a directory, sorted.
function H.ls(dir)
  local names = {}
  for name in sh("ls -A " .. H.shell_quote(dir)):gmatch("[^\n]+") do names[#names + 1] = name end
  table.sort(names)
  return names
end

--- Names in DIR that are partial files a fetch of NAME left (`.NAME.udpxfer-XXXXXXXX`).
function H.partials(dir, name)
  local found, prefix = {}, H.core.partial_prefix(name)
  for _, n in ipairs(H.ls(dir)) do
    if n:sub(1, #prefix) == prefix and n:sub(#prefix + 1):find("^%x+$") then found[#found + 1] = n end
  end
  return found
end

-- Hand-built wire packets: an encoder written independently of the C one,
-- from the format in README.md, so the two check each other.
H.wire = {}
local HDR = ">BBBBBBI2I8"

H.WIRE_VERSION = 5
H.FLAG_TREE = 2
H.FLAG_BARE = 0x10

local function header(typ, xid, body, flags)
  return HDR:pack(0x55, 0x58, H.WIRE_VERSION, typ, flags or 0, 0, #body, xid) .. body
end

--- A REQUEST; KIND 0 a file, 1 a listing; FLAGS 1 asks for the tree's root.
function H.wire.request(xid, name, chunk_size, pad, kind, flags)
  local body = (">I4BBs2"):pack(chunk_size or H.core.DEFAULT_CHUNK, kind or 0, flags or 0, name)
  if pad ~= false and #body < 240 then body = body .. ("\0"):rep(240 - #body) end
  return header(1, xid, body)
end

--- A selection (files of a listing, README's protocol): the listing's
-- SHA-256 (32 bytes), u16 n, n x (u32 first, u32 count) file numbers.
function H.wire.selection(listing, ranges)
  local t = { listing, (">I2"):pack(#ranges) }
  for _, r in ipairs(ranges) do t[#t + 1] = (">I4I4"):pack(r[1], r[2]) end
  return table.concat(t)
end

--- A REQUEST of kind 2 (files of a listing): NAME the folder, SEL a
-- selection's bytes; SEL_LEN, if given, is what the length field says.
function H.wire.files_request(xid, name, chunk_size, sel, sel_len)
  local body = (">I4BBs2"):pack(chunk_size or H.core.DEFAULT_CHUNK, 2, 0, name) .. (">I2"):pack(sel_len or #sel) .. sel
  if #body < 240 then body = body .. ("\0"):rep(240 - #body) end
  return header(1, xid, body)
end

--- A NEED; TREE asks for tree nodes (ids) instead of chunks.
function H.wire.need(xid, handle, chunk_size, cookie, seq, ranges, rate_kib, tree)
  local body = (">I4I4"):pack(handle, chunk_size) .. cookie .. (">I4I4I2"):pack(seq, rate_kib or 0, #ranges)
  for _, r in ipairs(ranges) do body = body .. (">I4I4"):pack(r[1], r[2]) end
  return header(4, xid, body, tree and H.FLAG_TREE or 0)
end

function H.wire.close(xid) return header(6, xid, (">I2"):pack(0)) end

function H.wire.error(xid, code, text) return header(3, xid, (">I2s2"):pack(code, text)) end

--- Decode a packet's header and, for the types specs look at, its body.
function H.wire.decode(pkt)
  local m0, m1, ver, typ, flags, _, blen, xid, pos = HDR:unpack(pkt)
  local m = { magic = m0 == 0x55 and m1 == 0x58, version = ver, type = typ, flags = flags,
    body_len = blen, xid = xid }
  if typ == 2 then
    m.size, m.chunk_size, m.chunks, m.handle, pos = (">I8I4I4I4"):unpack(pkt, pos)
    m.sha256 = pkt:sub(pos, pos + 31)
    m.cookie = pkt:sub(pos + 32, pos + 47)
    m.offer_flags = pkt:byte(pos + 48)
    if m.offer_flags & 1 == 1 then m.root = pkt:sub(pos + 49, pos + 80) end
  elseif typ == 3 then
    m.code, m.text = (">I2s2"):unpack(pkt, pos)
  elseif typ == 4 then
    m.handle, m.chunk_size = (">I4I4"):unpack(pkt, pos)
    m.seq, m.rate_kib, m.nranges = (">I4I4I2"):unpack(pkt, pos + 24)
  elseif typ == 5 then
    m.seq, m.index = (">I4I4"):unpack(pkt, pos)
    if flags & H.FLAG_BARE == 0 then
      m.hash = pkt:sub(pos + 8, pos + 23)
      m.data = pkt:sub(pos + 24)
    else
      m.data = pkt:sub(pos + 8) -- bare: no chunk hash
    end
  end
  return m
end

H.TYPE = { REQUEST = 1, OFFER = 2, ERROR = 3, NEED = 4, DATA = 5, CLOSE = 6 }

-- A simulated link: transmit(data, from, to) applies loss, corruption,
-- truncation, duplication, reordering and per-host rates; due(now) hands
-- back the datagrams that have arrived, in arrival order.
local function new_link(o, st, clock)
  local link = o.link or {}
  local inflight, link_free = {}, {}
  local L = {}
  function L.transmit(data, from, to)
    local now = clock()
    st.sent = st.sent + 1
    if o.filter then
      data = o.filter(data, from, to, now)
      if not data then return end
    end
    if math.random() < (link.loss or 0) then st.dropped = st.dropped + 1 return end
    if #data > 0 and math.random() < (link.corrupt or 0) then
      local i = math.random(1, #data)
      data = data:sub(1, i - 1) .. string.char(data:byte(i) ~ (1 << math.random(0, 7))) .. data:sub(i + 1)
      st.corrupt = st.corrupt + 1
    end
    if #data > 0 and math.random() < (link.truncate or 0) then
      data = data:sub(1, math.random(0, #data - 1))
      st.truncated = st.truncated + 1
    end
    local delay = link.delay or 0.0005
    local rate = o.rates and o.rates[from]
    if rate then
      local start = math.max(now, link_free[from] or now)
      link_free[from] = start + #data / rate
      delay = delay + link_free[from] - now
    end
    if link.reorder and math.random() < link.reorder then delay = delay + math.random() * 0.005 end
    inflight[#inflight + 1] = { t = now + delay, from = from, to = to, data = data }
    if link.dup and math.random() < link.dup then
      st.dup = st.dup + 1
      inflight[#inflight + 1] = { t = now + delay + 0.0003, from = from, to = to, data = data }
    end
  end
  --- The earliest arrival time (math.huge if nothing is in flight).
  function L.next_arrival()
    local t = math.huge
    for _, p in ipairs(inflight) do t = math.min(t, p.t) end
    return t
  end
  function L.due(now)
    local due, keep = {}, {}
    for _, p in ipairs(inflight) do
      if p.t <= now then due[#due + 1] = p else keep[#keep + 1] = p end
    end
    inflight = keep
    table.sort(due, function(a, b) return a.t < b.t end)
    return due
  end
  return L
end

local function new_link_stats()
  return { sent = 0, dropped = 0, dup = 0, corrupt = 0, truncated = 0, server_events = {} }
end

--- Drive sim engines over a simulated link until the client finishes.
-- o.client: a sim client; o.servers: { [addr] = sim server };
-- o.client_addr; o.link = { loss, dup, reorder, corrupt, truncate, delay };
-- o.filter(pkt, from, to, now) may return a replacement packet or nil to drop it;
-- o.rates = { [addr] = bytes/s } serialises what that host sends;
-- o.kill = { [addr] = t } silences a server from time t on;
-- o.join = { [addr] = t } keeps a server silent until time t;
-- o.seed; o.max_time (simulated seconds).
-- Returns the client's final event, every client event, link counters.
function H.simulate(o)
  math.randomseed(o.seed or 1)
  local now = o.start or 0
  local caddr = o.client_addr or "10.0.0.2:40000"
  local events = {}
  local st = new_link_stats()
  local link = new_link(o, st, function() return now end)
  local function alive(addr)
    return not ((o.kill and o.kill[addr] and now >= o.kill[addr]) or (o.join and o.join[addr] and now < o.join[addr]))
  end
  local addrs = {} -- in one order every run (pairs' order changes from run to run)
  for addr in pairs(o.servers) do addrs[#addrs + 1] = addr end
  table.sort(addrs)
  for _ = 1, o.max_steps or 2000000 do
    while true do
      local d, to = o.client:output(now)
      if not d then break end
      link.transmit(d, caddr, to)
    end
    for _, addr in ipairs(addrs) do
      local s = o.servers[addr]
      while alive(addr) do
        local d, to = s:output(now)
        if not d then break end
        link.transmit(d, addr, to)
      end
      for _, ev in ipairs(s:drain()) do st.server_events[#st.server_events + 1] = ev end
    end
    for _, ev in ipairs(o.client:drain()) do
      events[#events + 1] = ev
      if ev.type == "start" then st.start_t = now end
      if ev.type == "done" or ev.type == "error" then
        st.t = now -- simulated time at the end
        for _, p in ipairs(link.due(math.huge)) do -- what the client sent last (its CLOSE) still arrives
          if o.servers[p.to] and alive(p.to) then o.servers[p.to]:input(p.data, p.from, p.t) end
        end
        return ev, events, st
      end
    end
    local t = math.min(o.client:deadline() or math.huge, link.next_arrival())
    for _, addr in ipairs(addrs) do
      if alive(addr) then t = math.min(t, o.servers[addr]:deadline() or math.huge) end -- a silenced server keeps nobody waiting
    end
    if t == math.huge then return nil, events, st end
    now = math.max(t, now + 1e-6)
    if now > (o.max_time or 120) then return nil, events, st end
    for _, p in ipairs(link.due(now)) do
      if p.to == caddr then
        o.client:input(p.data, p.from, now)
      elseif o.servers[p.to] and alive(p.to) then
        o.servers[p.to]:input(p.data, p.from, now)
      end
    end
  end
  return nil, events, st
end

H.SENDER = "10.0.0.1:40000"
H.RECEIVER = "10.0.0.2:10527"

--- Drive a sim stream sender and receiver over a simulated link.
-- o.data: the bytes to send (written as the sender's buffer allows);
-- o.link, o.filter, o.seed, o.max_time as for H.simulate;
-- o.sender / o.receiver: extra options for core.sender / core.receiver;
-- o.receiver_at: the receiver starts at this time (the sender before it);
-- o.kill_sender: the sender falls silent at this time;
-- o.finish_at: the sender's application ends the stream only at this time;
-- o.read_limit: bytes the receiver's application takes per millisecond (a slow reader).
-- Returns { sender = final event, receiver = final event, data = bytes
-- read, events = { sender = {...}, receiver = {...} }, sender_stats,
-- receiver_stats, link = counters, t = simulated end time }.
function H.simulate_stream(o)
  math.randomseed(o.seed or 1)
  local now = 0
  local st = new_link_stats()
  local link = new_link(o, st, function() return now end)
  local so = { peer = H.RECEIVER, sim = true, now = 0 }
  for k, v in pairs(o.sender or {}) do so[k] = v end
  local snd = H.core.sender(so)
  local rcv
  local function start_receiver()
    local ro = { sim = true, now = now }
    for k, v in pairs(o.receiver or {}) do ro[k] = v end
    rcv = H.core.receiver(ro)
  end
  if not o.receiver_at then start_receiver() end
  local res = { events = { sender = {}, receiver = {} } }
  local got, written, reader_busy = {}, 0, false
  local data = o.data or ""
  local function sender_alive() return not (o.kill_sender and now >= o.kill_sender) end
  local function collect(who, obj)
    for _, ev in ipairs(obj:drain()) do
      table.insert(res.events[who], ev)
      if ev.type == "done" or ev.type == "error" then res[who] = ev end
    end
  end
  for _ = 1, o.max_steps or 3000000 do
    if not rcv and now >= o.receiver_at then start_receiver() end
    if sender_alive() and not res.sender then
      if written < #data then
        written = written + snd:write(data:sub(written + 1, written + 1048576))
      end
      if written == #data and not res.sender_finished and now >= (o.finish_at or 0) then
        snd:finish()
        res.sender_finished = true
      end
      while true do
        local d, to = snd:output(now)
        if not d then break end
        link.transmit(d, H.SENDER, to)
      end
      collect("sender", snd)
    end
    if rcv then
      while true do
        local d, to = rcv:output(now)
        if not d then break end
        link.transmit(d, H.RECEIVER, to)
      end
      got[#got + 1] = rcv:read(now, o.read_limit)
      reader_busy = o.read_limit and #got[#got] == o.read_limit
      collect("receiver", rcv)
    end
    if res.receiver and (res.sender or not sender_alive()) then break end
    local t = link.next_arrival()
    if sender_alive() and not res.sender then t = math.min(t, snd:deadline() or math.huge) end
    if rcv then t = math.min(t, rcv:deadline() or math.huge) end
    if not rcv then t = math.min(t, o.receiver_at) end
    if reader_busy then t = math.min(t, now + 0.001) end -- the slow reader reads again
    if not res.sender_finished and o.finish_at then t = math.min(t, math.max(now, o.finish_at)) end
    if t == math.huge then break end
    now = math.max(t, now)
    if now > (o.max_time or 120) then break end
    for _, p in ipairs(link.due(now)) do
      if p.to == H.RECEIVER and rcv then
        rcv:input(p.data, p.from, now)
      elseif p.to == H.SENDER and sender_alive() and not res.sender then
        snd:input(p.data, p.from, now)
      end
    end
  end
  res.data = table.concat(got)
  res.sender_stats = snd:stats()
  res.receiver_stats = rcv and rcv:stats()
  res.link, res.t = st, now
  snd:close()
  if rcv then rcv:close() end
  return res
end

--- Step real (socket) objects until done() is true or `limit` seconds pass.
function H.drive(objs, done, limit)
  local deadline = H.core.now() + (limit or 30)
  while not done() do
    if H.core.now() > deadline then return false end
    local fds, timeout = {}, 0.2
    for _, o in ipairs(objs) do
      if not o.closed then
        o:step()
        fds[#fds + 1] = o:pollfd()
        fds[#fds + 1] = o:events()
        timeout = math.min(timeout, o:timeout() or 0.2)
      end
    end
    if done() then break end
    H.core.poll(fds, timeout)
  end
  return true
end

--- Start a command in the background; returns its PID and a reader of its
-- stdout (the command's first output line is its PID, from the wrapper).
function H.spawn(cmd)
  local p = assert(io.popen("exec sh -c 'echo $$; exec " .. cmd:gsub("'", "'\\''") .. "'", "r"))
  local pid = tonumber(p:read("l"))
  return pid, p
end

function H.kill(pid, sig)
  os.execute(("kill -%s %d 2>/dev/null"):format(sig or "TERM", pid))
end

--- Run a shell command; returns its exit status, stdout and stderr.
function H.run(cmd)
  local errf = os.tmpname()
  local p = assert(io.popen(cmd .. " 2>" .. errf, "r"))
  local out = p:read("a")
  local _, _, code = p:close()
  local err = H.read(errf)
  os.remove(errf)
  return code, out, err
end

--- The interpreter specs run Lua programs with (`make asan`: a sanitised one).
H.LUA = os.getenv("UDPXFER_LUA") or "lua5.4"
H.UDPXFER = H.LUA .. " bin/udpxfer"

--- Start `udpxfer serve DIR` on a free port, with EXTRA arguments and ENV
-- assignments ("K=V ..."); returns pid, port, stdout reader. With DRAIN,
-- its log after the first line is read and thrown away (a log nobody
-- reads would fill the pipe and stop the server).
function H.start_server(dir, extra, env, drain)
  local cmd = (env and "env " .. env .. " " or "") .. H.UDPXFER .. " serve " .. H.shell_quote(dir)
    .. " --port 0 --json " .. (extra or "")
  if drain then
    local p = assert(io.popen("sh -c 'echo $$; exec " .. cmd:gsub("'", "'\\''")
      .. "' | (IFS= read -r pid; echo \"$pid\"; IFS= read -r line; echo \"$line\"; exec cat >/dev/null)"))
    local pid = tonumber(p:read("l"))
    local line = p:read("l")
    local port = line and tonumber(line:match('"port":(%d+)'))
    assert(port, "server did not start: " .. tostring(line))
    return pid, port, p
  end
  local pid, p = H.spawn(cmd)
  local line = p:read("l")
  local port = line and tonumber(line:match('"port":(%d+)'))
  assert(port, "server did not start: " .. tostring(line))
  return pid, port, p
end

function H.is_root() return H.sh("id -u"):match("^0") ~= nil end

local function unhex(s) return (s:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end)) end
H.unhex = unhex

--- A hand-written server on loopback that offers LISTING (text) as the
-- listing of any folder and FILES ({ [name] = bytes, or { code, text } for
-- an ERROR answer }) by name, speaking
-- the wire format from README.md (independently of the C code), with a
-- cookie it never checks. A pollable object for H.drive; `.port`.
function H.fake_server(listing, files)
  local socket = require "socket"
  local u = assert(socket.udp())
  assert(u:setsockname("127.0.0.1", 0))
  u:settimeout(0)
  local s = { port = select(2, u:getsockname()), requests = {} }
  local content = {}
  local function offer(xid, data, cs)
    local count = (#data + cs - 1) // cs
    local body = (">I8I4I4I4"):pack(#data, cs, count, 1) .. unhex(H.core.sha256(data)) .. ("\0"):rep(16) .. "\0"
    return header(2, xid, body)
  end
  function s:step()
    while true do
      local pkt, ip, port = u:receivefrom()
      if not pkt then return false end
      local _, _, _, typ, flags, _, _, xid, pos = HDR:unpack(pkt)
      if typ == 1 then
        local cs, kind, _, name = (">I4BBs2"):unpack(pkt, pos)
        self.requests[#self.requests + 1] = { kind = kind, name = name }
        local data = kind == 1 and listing or files and files[name]
        if type(data) == "table" then
          u:sendto(H.wire.error(xid, data[1], data[2]), ip, port)
        else
          content[xid] = { data = data, cs = cs }
          u:sendto(data and offer(xid, data, cs) or H.wire.error(xid, 1, "not found"), ip, port)
        end
      elseif typ == 4 and flags == 0 and content[xid] and content[xid].data then
        local c = content[xid]
        local p = pos + 8 + 16
        local seq, _, n = (">I4I4I2"):unpack(pkt, p)
        p = p + 10
        for _ = 1, n do
          local first, count
          first, count, p = (">I4I4"):unpack(pkt, p)
          for i = first, first + count - 1 do
            local chunk = c.data:sub(i * c.cs + 1, (i + 1) * c.cs)
            local h = unhex(H.core.sha256((">I4"):pack(i) .. chunk)):sub(1, 16)
            u:sendto(header(5, xid, (">I4I4"):pack(seq, i) .. h .. chunk), ip, port)
          end
        end
      end
    end
  end
  function s:pollfd() return u:getfd() end
  function s:events() return "r" end
  function s:timeout() return nil end
  function s:close() u:close() end
  return s
end

--- A listing's text from LINES (entries after the folder itself, whose
-- mode is ROOT_MODE, default 755).
function H.listing(lines, root_mode)
  local body = #lines > 0 and table.concat(lines, "\n") .. "\n" or ""
  return ("udpxfer-listing 1\nd\t%s\t0\t.\n"):format(root_mode or "755") .. body
end

--- Sync DIR from a hand-written server (H.fake_server) offering listing
-- TEXT and FILES ({ [name] = bytes }), with the sync options OPTS.
-- Returns the result (or nil), message, code, and the file events.
function H.sync_listing(dir, text, files, opts)
  local fake = H.fake_server(text, files)
  local o = { remote = ".", dir = dir, broadcast = false, servers = { "127.0.0.1:" .. fake.port } }
  local events = {}
  o.on_file = function(ev) events[#events + 1] = ev end
  for k, v in pairs(opts or {}) do o[k] = v end
  local s = assert(H.udpxfer.sync(o))
  assert(H.drive({ s, fake }, function() return s.outcome ~= nil end, 20), "the sync finished")
  local res, msg, code = s:result()
  s:close()
  fake:close()
  return res, msg, code, events
end

--- A folder at PATH holding FILES ({ [relative path] = bytes }), every
-- entry's mtime at T seconds (default 1700000000), so that copies of it
-- list alike (one listing SHA-256).
function H.folder(path, files, t)
  local dirs = { [path] = true }
  for p in pairs(files) do
    local d = p:match("^(.*)/[^/]*$")
    if d then dirs[path .. "/" .. d] = true end
  end
  local q = {}
  for d in pairs(dirs) do q[#q + 1] = H.shell_quote(d) end
  os.execute("mkdir -p " .. table.concat(q, " "))
  for p, data in pairs(files) do H.write(path .. "/" .. p, data) end
  os.execute(("find %s -exec touch -h -d @%d {} +"):format(H.shell_quote(path), t or 1700000000))
end

--- The listing of "." from sim server ADDR (one of SERVERS, { [addr] =
-- server }) over a lossless simulated link. O: key, chunk_size, seed.
-- Returns its SHA-256 (hex) and its files as a batch takes them ({ path,
-- size, sha256, mode, mtime, number }, in listing order).
function H.sim_listing(servers, addr, o)
  o = o or {}
  local c = assert(H.core.client { name = ".", kind = "listing", memory = true, targets = { addr }, sim = true,
    unicast = true, seed = o.seed or 77, chunk_size = o.chunk_size, key = o.key })
  local final = H.simulate { client = c, servers = servers, client_addr = o.client_addr }
  assert(final and final.type == "done", "the listing was fetched")
  c:close()
  local entries = assert(H.core.listing_decode(final.data))
  local files = {}
  for i = 1, #entries do
    local e = entries[i]
    if e.type == "file" then
      files[#files + 1] = { path = e.path, size = e.size, sha256 = e.sha256, mode = e.mode, mtime = e.mtime,
        number = e.number }
    end
  end
  return final.sha256, files
end

--- Mode bits of PATH (not following a link), as a number.
function H.mode(path)
  return tonumber(H.sh("stat -c %a " .. H.shell_quote(path)), 8)
end

--- What a folder holds, for comparing trees: { [path] = {type, mode,
-- size, mtime, sha256, target} }, udpxfer's own files left out.
function H.snapshot(dir)
  local d = assert(H.core.dir(dir))
  local t = {}
  for _, e in ipairs(assert(d:scan())) do
    if not e.own then
      t[e.path] = { type = e.type, mode = e.mode, mtime = e.mtime, size = e.type == "file" and e.size or nil,
        target = e.target, sha256 = e.type == "file" and d:sha256(e.path) or nil }
    end
  end
  d:close()
  return t
end

return H
