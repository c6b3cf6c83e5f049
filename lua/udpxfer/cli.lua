--- The `udpxfer` command line. `main(argv)` returns the process exit code.
local udpxfer = require "udpxfer"
local json = require "udpxfer.json"
local progress = require "udpxfer.progress"

local M = {}

--- Exit codes, stable for scripts.
M.EXIT = { ok = 0, failed = 1, usage = 2, notfound = 3, corrupt = 4, io = 5 }

local code_exit = {
  noserver = M.EXIT.notfound, notfound = M.EXIT.notfound, refused = M.EXIT.notfound,
  version = M.EXIT.notfound, corrupt = M.EXIT.corrupt, stale = M.EXIT.corrupt,
  io = M.EXIT.io, usage = M.EXIT.usage, timeout = M.EXIT.notfound, broken = M.EXIT.failed,
  busy = M.EXIT.failed,
}

local USAGE = [==[
usage:
  udpxfer serve [DIR] [--port N] [--bind ADDR] [--max-chunk N] [--legacy [--legacy-mbit R]]
                [--quiet] [--json]
  udpxfer get NAME [--out DIR] [--port N] [--server HOST[:PORT]]...
                   [--broadcast ADDR|none]... [--timeout S] [--chunk-size N]
                   [--sha256 HEX] [--legacy] [--quiet] [--json]
  udpxfer recv [--port N] [--bind ADDR] [--timeout S] [--idle-timeout S] [-v] [-q] > OUT
  udpxfer send HOST[:PORT] [--port N] [--timeout S] [--idle-timeout S] [-v] [-q] < IN
  udpxfer help | --version

serve   make every regular file under DIR (default ./data) available on UDP
        port 10526 (alias: server)
get     find NAME by broadcast (255.255.255.255 and each interface's directed
        broadcast; --broadcast replaces them, --broadcast none disables them,
        --server adds unicast targets), fetch it, verify it, print its path
recv    receive one byte stream on UDP port 10527 and write it to stdout;
        exits 0 once every byte is written and the stream's SHA-256 matched
send    send stdin to a receiver as a stream; exits 0 once the receiver has
        written and verified every byte
-v      log every datagram (SEND/RECV/DROP) to stderr
--legacy  speak the original tool's protocol ("get NAME", 1 KiB chunks); off by
          default for serve, as that protocol cannot be protected against spoofing
-p is short for --port, -o for --out, -q for --quiet.

exit codes: 0 ok, 1 failed (a broken stream), 2 usage, 3 not found / no server
or no receiver, 4 verification failed, 5 local I/O error
]==]

M.VERSION = "0.1.0"

local flags = {
  ["--port"] = "port", ["-p"] = "port", ["--bind"] = "bind", ["--out"] = "out", ["-o"] = "out",
  ["--server"] = "server", ["--broadcast"] = "broadcast", ["--timeout"] = "timeout",
  ["--chunk-size"] = "chunk_size", ["--max-chunk"] = "max_chunk", ["--sha256"] = "sha256",
  ["--idle-timeout"] = "idle_timeout", ["--corrupt-percent"] = "corrupt_percent",
  ["--lie-percent"] = "lie_percent", ["--legacy-mbit"] = "legacy_mbit",
}
local switches = { ["--quiet"] = "quiet", ["-q"] = "quiet", ["--json"] = "json",
  ["--version"] = "version", ["--help"] = "help", ["-h"] = "help", ["--legacy"] = "legacy",
  ["-v"] = "verbose", ["--verbose"] = "verbose" }
local repeated = { server = true, broadcast = true }
local numeric = { port = true, timeout = true, chunk_size = true, max_chunk = true, idle_timeout = true,
  corrupt_percent = true, lie_percent = true, legacy_mbit = true }

--- Parse argv into (command or nil, positional args, options), or
-- (nil, message) on a usage error.
function M.parse(argv)
  local pos, opt = {}, { server = {}, broadcast = {} }
  local i = 1
  while i <= #argv do
    local a = argv[i]
    local key, val = a:match("^(%-%-[%w-]+)=(.*)$")
    key = key or a
    if flags[key] then
      local name = flags[key]
      if not val then
        i = i + 1
        val = argv[i]
        if val == nil then return nil, a .. " needs a value" end
      end
      if numeric[name] then
        local n = tonumber(val)
        if not n then return nil, a .. " needs a number, got " .. val end
        val = n
      end
      if repeated[name] then table.insert(opt[name], val) else opt[name] = val end
    elseif switches[a] then
      opt[switches[a]] = true
    elseif a == "--" then
      table.move(argv, i + 1, #argv, #pos + 1, pos)
      break
    elseif a:sub(1, 1) == "-" and #a > 1 then
      return nil, "unknown option " .. a
    else
      pos[#pos + 1] = a
    end
    i = i + 1
  end
  local cmd = table.remove(pos, 1)
  return cmd, pos, opt
end

local function stamp()
  return os.date("!%Y-%m-%dT%H:%M:%SZ")
end

local function emit(opt, out, ev, text)
  if opt.json then
    out:write(json.encode(ev), "\n")
  elseif not opt.quiet and text then
    out:write(text, "\n")
  end
  out:flush()
end

local function serve(pos, opt, out, err)
  if #pos > 1 then return M.EXIT.usage, "serve takes one directory" end
  local dir = pos[1] or "./data"
  local srv, msg, code = udpxfer.serve {
    dir = dir, port = opt.port, bind = opt.bind, max_chunk = opt.max_chunk,
    idle_timeout = opt.idle_timeout, corrupt_percent = opt.corrupt_percent, lie_percent = opt.lie_percent,
    legacy = opt.legacy, legacy_mbit = opt.legacy_mbit,
    on_request = function(ev)
      ev.time = stamp()
      emit(opt, out, ev, ("%s request %s %q %s"):format(ev.time, ev.client, ev.name, ev.status))
    end,
    on_done = function(ev)
      ev.time = stamp()
      emit(opt, out, ev, ("%s done %s %q %s sent %s in %.2fs"):format(ev.time, ev.client, ev.name,
        ev.reason, progress.bytes(ev.bytes_sent), ev.elapsed))
    end,
  }
  if not srv then
    err:write("udpxfer: ", msg, "\n")
    return code_exit[code] or M.EXIT.failed
  end
  emit(opt, out, { type = "listening", dir = dir, port = srv:port() },
    ("serving %s on UDP port %d"):format(dir, srv:port()))
  srv:run()
  return M.EXIT.ok
end

local function get(pos, opt, out, err)
  if #pos ~= 1 then return M.EXIT.usage, "get takes exactly one NAME" end
  local name = pos[1]
  local bcast = opt.broadcast
  if #bcast == 0 then
    bcast = nil
  elseif #bcast == 1 and bcast[1] == "none" then
    bcast = false
  end
  local tty = not opt.quiet and not opt.json and udpxfer.core.isatty(2)
  local shown = false
  local g, msg, code = udpxfer.get {
    name = name, out = opt.out or ".", port = opt.port, servers = opt.server, broadcast = bcast,
    timeout = opt.timeout, chunk_size = opt.chunk_size, sha256 = opt.sha256,
    idle_timeout = opt.idle_timeout, legacy = opt.legacy, progress_interval = opt.json and 0.5 or 0.1,
    on_start = function(ev)
      emit(opt, out, ev, nil)
      if not opt.quiet and not opt.json then
        err:write(("fetching %s (%s, %d chunks, sha256 %s) from %d server%s\n"):format(name,
          progress.bytes(ev.size), ev.chunks, ev.sha256:sub(1, 16), ev.servers, ev.servers == 1 and "" or "s"))
        if ev.versions > 1 then
          err:write(("%d versions offered by %d servers: taking sha256 %s, offered by %d\n"):format(
            ev.versions, ev.offers, ev.sha256, ev.servers))
        end
      end
    end,
    on_preparing = function(ev)
      emit(opt, out, ev, nil)
      if not opt.quiet and not opt.json then
        err:write(("server %s is preparing %s (hashing it); waiting\n"):format(ev.server, name))
      end
    end,
    on_drop = function(ev)
      emit(opt, out, ev, nil)
      if not opt.quiet and not opt.json then
        err:write(("dropped server %s (%s)\n"):format(ev.server, ev.reason))
      end
    end,
    on_retry = function(ev)
      emit(opt, out, ev, nil)
      if not opt.quiet and not opt.json then
        if shown then err:write("\n") end
        err:write(("%s; fetching again without server %s (attempt %d)\n"):format(ev.message, ev.server, ev.attempt))
      end
    end,
    on_progress = function(st)
      if opt.json then
        emit(opt, out, { type = "progress", bytes = st.bytes, size = st.size, elapsed = st.elapsed,
          servers = st.servers })
      elseif tty then
        err:write("\r", progress.line(name, st), "\27[K")
        shown = true
      end
    end,
  }
  if not g then
    err:write("udpxfer: ", msg, "\n")
    return code_exit[code] or M.EXIT.failed
  end
  local res, emsg, ecode = g:run()
  if shown then err:write("\n") end
  local st = g:stats()
  g:close()
  if not res then
    emit(opt, out, { type = "error", message = emsg, code = ecode, name = name }, nil)
    err:write(("udpxfer: %s: %s\n"):format(name, emsg))
    return code_exit[ecode] or M.EXIT.failed
  end
  res.servers = st.servers
  res.rate = st.elapsed > 0 and st.bytes / st.elapsed or 0
  emit(opt, out, res, res.path)
  return M.EXIT.ok
end

local function stream_opts(opt, err)
  return {
    port = opt.port, bind = opt.bind, timeout = opt.timeout, idle_timeout = opt.idle_timeout,
    on_log = opt.verbose and function(line) err:write(line, "\n") end or nil,
    on_connect = function(ev)
      if not opt.quiet then err:write(("connected to %s (stream %s)\n"):format(ev.peer, ev.id)) end
    end,
  }
end

local function stream_end(s, opt, err, verb)
  local res, emsg, ecode = s:run()
  local st = s:stats()
  s:close()
  if not res then
    err:write(("udpxfer: %s\n"):format(emsg))
    return code_exit[ecode] or M.EXIT.failed
  end
  if not opt.quiet then
    local rate = res.elapsed > 0 and res.bytes / res.elapsed or 0
    err:write(("%s %s in %.2fs (%s/s), sha256 %s%s\n"):format(verb, progress.bytes(res.bytes), res.elapsed,
      progress.bytes(rate), res.sha256,
      st.sent_bytes > 0 and (", %.1f%% retransmitted"):format(100 * st.retransmitted_bytes / st.sent_bytes) or ""))
  end
  return M.EXIT.ok
end

local function recv(pos, opt, _, err)
  if #pos > 0 then return M.EXIT.usage, "recv takes no arguments (the stream goes to stdout)" end
  local o = stream_opts(opt, err)
  o.fd = 1
  local r, msg, code = udpxfer.recv(o)
  if not r then
    err:write("udpxfer: ", msg, "\n")
    return code_exit[code] or M.EXIT.failed
  end
  if not opt.quiet then err:write(("receiving on UDP port %d\n"):format(r:port())) end
  return stream_end(r, opt, err, "received")
end

local function send(pos, opt, _, err)
  if #pos ~= 1 then return M.EXIT.usage, "send takes exactly one HOST[:PORT]" end
  local o = stream_opts(opt, err)
  o.host, o.fd = pos[1], 0
  local s, msg, code = udpxfer.send(o)
  if not s then
    err:write("udpxfer: ", msg, "\n")
    return code_exit[code] or M.EXIT.failed
  end
  return stream_end(s, opt, err, "sent")
end

--- Run the CLI. `argv` is a list of strings; `out`/`err` default to
-- io.stdout/io.stderr. Returns the exit code.
function M.main(argv, out, err)
  out, err = out or io.stdout, err or io.stderr
  local cmd, pos, opt = M.parse(argv or {})
  if type(pos) == "string" then -- a parse error
    err:write("udpxfer: ", pos, "\n", USAGE)
    return M.EXIT.usage
  end
  if opt.version then cmd = "version" end
  cmd = cmd or "help"
  if cmd == "help" or opt.help then
    out:write(USAGE)
    return M.EXIT.ok
  end
  if cmd == "version" or opt.version then
    out:write("udpxfer ", M.VERSION, "\n")
    return M.EXIT.ok
  end
  local run = ({ serve = serve, server = serve, get = get, send = send, recv = recv })[cmd]
  if not run then
    err:write("udpxfer: unknown command ", cmd, "\n", USAGE)
    return M.EXIT.usage
  end
  local rc, usage = run(pos, opt, out, err)
  if usage then err:write("udpxfer: ", usage, "\n", USAGE) end
  return rc
end

return M
