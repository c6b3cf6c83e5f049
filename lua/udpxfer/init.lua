--- udpxfer: reliable, fast file transfer and folder sync over UDP on a LAN.
--
-- `udpxfer.get{...}` (get.lua), `udpxfer.serve{...}` (serve.lua),
-- `udpxfer.sync{...}` (sync.lua), `udpxfer.list{...}` (list.lua),
-- `udpxfer.send{...}` and `udpxfer.recv{...}` (stream.lua) return
-- pollable objects: `step()` never blocks; `pollfd()` is one descriptor for
-- the object's whole life, `events()` and `timeout()` say what to wait for,
-- so any event loop (cqueues, luv, `udpxfer.core.poll`) drives them; `run()`
-- is the blocking convenience. Callbacks run in plain Lua after the C step
-- has returned, so they may `coroutine.yield()`.
--
-- `udpxfer.run(a, b, ...)` drives several in one loop (base.lua).
--
-- Programmer mistakes (a wrong type, an unknown or missing option, a
-- method on a closed object) raise. Runtime failures return nil, message, code;
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
if _VERSION ~= "Lua 5.4" then
  error(("udpxfer needs Lua 5.4, not %s: run lua5.4 (make deps makes it the 'lua' command)"):format(_VERSION), 0)
end
local base = require "udpxfer.base"

local core = base.core

-- Each class's module is loaded when first used: a command needs one.
local function later(module, name)
  return function(...) return require(module)[name](...) end
end

local M = {
  DEFAULT_PORT = core.DEFAULT_PORT,
  DEFAULT_CHUNK = core.DEFAULT_CHUNK,
  core = core,
  targets = base.targets,
  chunk_size_for = base.chunk_size_for,
  run = base.run,
  get = later("udpxfer.get", "new"),
  serve = later("udpxfer.serve", "new"),
  send = later("udpxfer.stream", "send"),
  recv = later("udpxfer.stream", "recv"),
  sync = later("udpxfer.sync", "new"),
  list = later("udpxfer.list", "new"),
}

return M
