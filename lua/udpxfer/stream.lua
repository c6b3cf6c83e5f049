--- Byte streams, stdin on one host into stdout on another:
-- `udpxfer.send{...}` and `udpxfer.recv{...}`.
local base = require "udpxfer.base"
local options = require "udpxfer.options"

local core = base.core
local class, call, progress, Pollable = base.class, base.call, base.progress, base.Pollable
local O = options

local M = {}

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

local STREAM = {
  port = O.integer(0, 65535), fd = O.fd, timeout = O.seconds, idle_timeout = O.seconds,
  buffer = O.integer(1, 1099511627776), key = O.string, progress_interval = O.interval, on_connect = O.callback,
  on_log = O.callback, on_progress = O.callback, on_done = O.callback, on_error = O.callback,
}
local SEND = options.merge(STREAM, { host = O.string, data = O.string, mss = O.integer(64, 65000) })
local RECV = options.merge(STREAM, { bind = O.string, on_data = O.callback, on_complete = O.callback })

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
  options.check("udpxfer.send", opts, SEND, { "host" })
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
  options.check("udpxfer.recv", opts or {}, RECV)
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

return M
