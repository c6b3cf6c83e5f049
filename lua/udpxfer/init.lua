--- udpxfer: reliable, fast file transfer and folder sync over UDP on a LAN.
--
-- `udpxfer.get{...}`, `udpxfer.serve{...}`, `udpxfer.sync{...}`,
-- `udpxfer.list{...}`, `udpxfer.send{...}` and `udpxfer.recv{...}` return
-- pollable objects: `step()` never blocks; `pollfd()` is one descriptor for
-- the object's whole life, `events()` and `timeout()` say what to wait for,
-- so any event loop (cqueues, luv, `udpxfer.core.poll`) drives them; `run()`
-- is the blocking convenience. Callbacks run in plain Lua after the C step
-- has returned, so they may `coroutine.yield()`.
--
-- Programmer mistakes (a wrong type, a missing required option, a method
-- on a closed object) raise. Runtime failures return nil, message, code;
-- the codes, each with one meaning:
--   noserver  nobody answered: no file server, stream receiver or sender in time
--   notfound  servers answered; none has the name
--   refused   a server refused the name (not a safe relative path, or its chunk size)
--   version   no server offers the version asked for (`sha256`)
--   stale     the file changed on the server during the transfer
--   corrupt   verification failed: the whole file's or the stream's SHA-256
--   timeout   every server of a file transfer stopped answering
--   broken    a stream ended early: its peer went silent or aborted
--   busy      the stream receiver serves another sender
--   io        a local I/O error: output folder missing, disk full, input unreadable
--   usage     a bad value at run time: an address that does not resolve, an option
--   inuse     the port is taken
--   closed    closed before it finished
--   pending   not finished yet (`result()` while running)
--   unsafe    a listing names a path that would leave the folder, or is malformed
-- (`udpxfer.core.ERRORS` lists them too.)
local base = require "udpxfer.base"

local core = base.core
local class, call, progress, Pollable = base.class, base.call, base.progress, base.Pollable

local M = {
  DEFAULT_PORT = core.DEFAULT_PORT,
  DEFAULT_CHUNK = core.DEFAULT_CHUNK,
  core = core,
  targets = base.targets,
  chunk_size_for = base.chunk_size_for,
}

-- Client ---------------------------------------------------------------------

local Get = class(Pollable)

--- Start fetching a file. Options: `name` (required), `out` (directory, default
-- "."), `port`, `servers` (list of "host[:port]"), `broadcast` (list; nil for
-- the defaults, false for none), `chunk_size` (default `chunk_size_for(targets)`), `timeout` (discovery, s),
-- `idle_timeout` (s), `sha256` (hex: the version to take), `window`,
-- `limit_rate` (bytes/s from all servers together),
-- `legacy` (speak the original tool's protocol: "get NAME", 1 KiB chunks),
-- `exclude` (list of "ip:port": servers to ignore), `verify` (check every
-- chunk against the tree from the start: see below), `progress_interval`
-- (s), and callbacks `on_offer`,
-- `on_preparing` (a server is still hashing the file: `{server=}`, once per
-- server; the fetch waits for it), `on_start`, `on_drop`, `on_retry`,
-- `on_progress`, `on_done`, `on_error`.
-- `resume` (default true): a partial file that an interrupted, killed or
-- timed-out fetch of the name left in the output folder is the local copy
-- this one reuses chunks from, each checked against the offer's chunk-hash
-- tree (so a file changed since is never mixed); it is removed once the
-- file is in place. Whatever `resume` says, `abort()` and a timeout leave
-- this fetch's partial file for the next (not in legacy mode). The stats' `bytes` are what came over the network,
-- `reused` what was taken from the partial file.
-- A fetch whose whole file fails its SHA-256 although every chunk passed was
-- fed wrong bytes that were hashed with them (a server that lies, or,
-- keyless, chunks forged under a server's address): the hash beside a chunk
-- cannot say by whom. It is tried once more with every chunk checked
-- against its leaf of the offered chunk-hash tree (whose root the servers'
-- offers agree on), so a server sending a chunk that fails its leaf is
-- proven wrong and dropped at once, and none is left out on suspicion;
-- `on_retry{attempt=2, message=}` is called, and `pollfd()` may change.
-- The "done" event lists the servers so proven wrong as `dropped`.
-- Returns the transfer object, or nil, message, code.
function M.get(opts)
  assert(type(opts) == "table", "udpxfer.get expects a table of options")
  assert(type(opts.name) == "string", "udpxfer.get: name (string) is required")
  local targets, nbcast = base.targets(opts)
  if not targets then return nil, nbcast, "usage" end
  if #targets == 0 then return nil, "no broadcast address or server to ask", "usage" end
  local link, own = opts.link, false
  if not link then
    local l, msg, code = core.link {}
    if not l then return nil, msg, code end
    link, own = l, true
  end
  local args = {
    name = opts.name, kind = opts.kind, out = opts.out or ".", as = opts.as, root = opts.root, path = opts.path,
    memory = opts.memory, basis = opts.basis, durable = opts.durable,
    resume = opts.resume ~= false and not opts.legacy,
    targets = targets, unicast = nbcast == 0, link = link,
    chunk_size = opts.chunk_size or (not opts.legacy and base.chunk_size_for(targets, opts.key) or nil),
    discover_timeout = opts.timeout,
    idle_timeout = opts.idle_timeout, sha256 = opts.sha256, window = opts.window,
    legacy = opts.legacy, exclude = opts.exclude, limit_rate = opts.limit_rate, key = opts.key,
    verify = opts.verify,
  }
  local obj, msg, code = core.client(args)
  if not obj then
    if own then link:close() end
    return nil, msg, code
  end
  return setmetatable({ obj = obj, link = link, own_link = own, opts = opts, args = args, dropped = {} }, Get)
end

-- The whole file failed its hash: once, start again checking every chunk
-- against the tree. Returns true if a new attempt is under way.
local function retry(self, ev)
  if self.args.verify or self.opts.legacy then return false end
  self.obj:close() -- its temporary file is gone already
  self.args.verify = true
  local obj, msg, code = core.client(self.args)
  if not obj then
    self.outcome = { type = "error", message = msg, code = code }
    call(self.opts.on_error, self.outcome)
    return true
  end
  self.obj = obj
  call(self.opts.on_retry, { type = "retry", attempt = 2, message = ev.message })
  return true
end

local client_handlers = {
  offer = function(self, ev) call(self.opts.on_offer, ev) end,
  preparing = function(self, ev) call(self.opts.on_preparing, ev) end,
  start = function(self, ev) call(self.opts.on_start, ev) end,
  drop = function(self, ev)
    if ev.reason == "corrupt" then self.dropped[#self.dropped + 1] = ev.server end
    call(self.opts.on_drop, ev)
  end,
  done = function(self, ev)
    ev.dropped = self.dropped
    self.outcome = ev
    call(self.opts.on_progress, self.obj:stats())
    call(self.opts.on_done, ev, self.obj:stats())
  end,
  error = function(self, ev)
    if ev.code == "corrupt" and retry(self, ev) then return end
    self.outcome = ev
    call(self.opts.on_error, ev)
  end,
}

--- Do whatever is due without blocking; dispatch callbacks. A fetch on a
-- shared link (`opts.link`) leaves the link's step to its owner.
-- Returns true once the transfer has finished, successfully or not.
function Get:step()
  if self.outcome then return true end
  if self.own_link then self.link:step() end
  for _, ev in ipairs(self.obj:drain()) do client_handlers[ev.type](self, ev) end
  progress(self, function(st) return st.state == "transfer" end)
  return self.outcome ~= nil
end

--- The link's descriptor: the same for the whole fetch.
function Get:pollfd() return self.link:pollfd() end

--- Stop now: the servers are told (CLOSE); the partial file stays for a
-- later fetch of the name to resume from (not in legacy mode).
function Get:abort()
  if not self.closed and not self.outcome then self.obj:abort("interrupted", true) end
  self:close()
end

--- Stop; a partial file is removed. Safe to call more than once.
function Get:close()
  if self.closed then return end
  base.forget(self.link:pollfd())
  Pollable.close(self)
  if self.own_link then self.link:close() end
end

-- Server ---------------------------------------------------------------------

local Serve = class(Pollable)

--- Serve every regular file under `dir` (the tree "."), and under each of
-- `shares` ({ NAME = PATH }: the tree NAME, its files "NAME/..."), and
-- listings of their folders. Options: `dir` (default "./data"),
-- `port` (default 10526; 0 picks one), `bind` (default "::", every address,
-- IPv6 and IPv4; an IPv4 address also hears its subnet's broadcasts),
-- `interface` (a network device name: only its traffic),
-- `max_chunk`, `idle_timeout`, `max_sessions` (default 256), `host_sessions`
-- (how many of them one client host may hold, default a quarter),
-- `host_requests` (requests per second one host may make, default 10000),
-- `host_rate` and `max_rate` (bytes per second to one host and in all,
-- default no cap), `work_rate` (work units per second answering requests
-- may take in all, a byte hashed being one; default 512 MiB: about half a
-- core; half of it for one client host that echoed a cookie, a sixteenth
-- for all others together and as much for their trees), `legacy` (also answer the
-- original tool's "get NAME"; it cannot be protected against spoofing, so it
-- is off by default), `legacy_mbit` (its pacing, default 80), `corrupt_percent` (fault
-- injection for tests: damage that share of chunks after hashing), `lie_percent` (the
-- same before hashing: the chunk hashes match the wrong bytes), `async_hash_min`
-- (files this large, default 64 MiB, are hashed off the loop; requests for
-- one meanwhile get "preparing"), callbacks `on_request` (`status` "ok",
-- "notfound", "refused", "preparing" or "io"), `on_start`, `on_done`.
-- Returns the server object, or nil, message, code.
function M.serve(opts)
  opts = opts or {}
  local obj, msg, code = core.server {
    dir = opts.dir or "./data", shares = opts.shares, port = opts.port or M.DEFAULT_PORT, bind = opts.bind,
    interface = opts.interface,
    max_chunk = opts.max_chunk, idle_timeout = opts.idle_timeout,
    max_sessions = opts.max_sessions, host_sessions = opts.host_sessions, host_requests = opts.host_requests,
    host_rate = opts.host_rate, max_rate = opts.max_rate, work_rate = opts.work_rate,
    corrupt_percent = opts.corrupt_percent, lie_percent = opts.lie_percent,
    legacy = opts.legacy, legacy_mbit = opts.legacy_mbit, async_hash_min = opts.async_hash_min, key = opts.key,
  }
  if not obj then return nil, msg, code end
  return setmetatable({ obj = obj, opts = opts }, Serve)
end

local server_handlers = { request = "on_request", start = "on_start", done = "on_done" }

--- Do whatever is due without blocking; dispatch callbacks.
-- Returns true only once the server is closed.
function Serve:step()
  if self.closed then return true end
  for _, ev in ipairs(self.obj:step()) do call(self.opts[server_handlers[ev.type]], ev) end
  return self.closed == true
end

--- The UDP port the server listens on.
function Serve:port() return self.obj:port() end
function Serve:result() return true end

--- Stop serving. Safe to call more than once (also from a callback).
function Serve:close()
  if self.closed then return end
  base.forget(self.obj:pollfd())
  self.closed = true
  self.obj:close()
end

-- Streams ---------------------------------------------------------------------

local Stream = class(Pollable)

local function stream_step(self)
  if self.outcome then return true end
  local events, log = self.obj:step()
  if log and self.opts.on_log then
    for line in log:gmatch("[^\n]+") do self.opts.on_log(line) end
  end
  for _, ev in ipairs(events) do
    if ev.type == "done" or ev.type == "error" then self.outcome = ev end
    call(self.opts[({ connect = "on_connect", complete = "on_complete", done = "on_done",
      error = "on_error" })[ev.type]], ev)
  end
  progress(self)
  return self.outcome ~= nil
end

--- The outcome: the "done" event ({bytes, sha256, elapsed}, plus `data`
-- for a receiver that collected it), or nil, message, code.
function Stream:result()
  local o = self.outcome
  if o and o.type == "done" and self.collected then o.data = table.concat(self.collected) end
  return Pollable.result(self)
end

--- Stop now: the peer is told (CLOSE), so it fails at once instead of
-- after its idle timeout.
function Stream:abort()
  if not self.closed and not self.outcome then self.obj:abort() end
  self:close()
end

local function stream_common(opts)
  return {
    fd = opts.fd, trace = opts.on_log ~= nil, buffer = opts.buffer, idle_timeout = opts.idle_timeout,
    key = opts.key,
  }
end

local Send = class(Stream)

--- Send a byte stream to a receiver. Options: `host` ("host[:port]",
-- required), `port` (default 10527), the bytes from one of `fd` (a file
-- descriptor read to its end, e.g. 0 for stdin), `data` (a string), or
-- `write()`/`finish()` calls; `timeout` (to connect, default 30 s),
-- `idle_timeout` (default 10 s), `mss`, `buffer`, and callbacks
-- `on_connect`, `on_log` (one SEND/RECV/DROP line per datagram),
-- `on_progress`, `on_done`, `on_error`. Returns the stream, or nil, message, code.
function M.send(opts)
  assert(type(opts) == "table" and type(opts.host) == "string", "udpxfer.send: host (string) is required")
  local peer, err = core.resolve(opts.host, opts.port or core.STREAM_PORT)
  if not peer then return nil, ("%s: %s"):format(opts.host, err), "usage" end
  local o = stream_common(opts)
  o.peer, o.mss, o.connect_timeout = peer, opts.mss, opts.timeout
  local obj, msg, code = core.sender(o)
  if not obj then return nil, msg, code end
  return setmetatable({ obj = obj, opts = opts, pending = opts.data }, Send)
end

--- Queue bytes to send; returns how many were taken (the rest does not fit
-- the buffer yet: step, then write the rest).
function Send:write(bytes) return self.obj:write(bytes) end
--- No more bytes: the stream ends after what was written.
function Send:finish() self.obj:finish() end

--- Do whatever is due without blocking; dispatch callbacks.
-- Returns true once the stream has ended, successfully or not.
function Send:step()
  if self.pending and not self.outcome then
    local n = self.obj:write(self.pending)
    self.pending = n < #self.pending and self.pending:sub(n + 1) or nil
    if not self.pending then self.obj:finish() end
  end
  return stream_step(self)
end

local Recv = class(Stream)

--- Receive one byte stream. Options: `port` (default 10527; 0 picks one),
-- `bind` (default "::", every address), where the bytes go: `fd` (e.g. 1 for stdout),
-- or `on_data(bytes)` called in order, or else collected for `result().data`;
-- `timeout` (for a sender to connect; default: wait for ever),
-- `idle_timeout` (the stream is broken after this long silent, default 10 s),
-- `buffer`, and callbacks `on_connect`, `on_log`, `on_progress`,
-- `on_complete` (every byte is out and the stream's SHA-256 matched),
-- `on_done`, `on_error`. Returns the stream, or nil, message, code.
function M.recv(opts)
  opts = opts or {}
  local o = stream_common(opts)
  o.port, o.bind, o.listen_timeout = opts.port or core.STREAM_PORT, opts.bind, opts.timeout
  local obj, msg, code = core.receiver(o)
  if not obj then return nil, msg, code end
  return setmetatable({ obj = obj, opts = opts,
    collected = not opts.fd and not opts.on_data and {} or nil }, Recv)
end

--- Do whatever is due without blocking; dispatch callbacks.
-- Returns true once the stream has ended, successfully or not.
function Recv:step()
  local done = stream_step(self)
  if not self.opts.fd and not self.closed then
    local bytes = self.obj:read()
    if #bytes > 0 then
      if self.collected then self.collected[#self.collected + 1] = bytes else self.opts.on_data(bytes) end
      done = stream_step(self) -- reading may have completed the stream
    end
  end
  return done
end

--- The UDP port the receiver listens on.
function Recv:port() return self.obj:port() end

M.sync = require("udpxfer.sync").new
M.list = require("udpxfer.list").new

return M
