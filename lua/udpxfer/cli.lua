--- The `udpxfer` command line. `main(argv)` returns the process exit code.
local argparse = require "argparse"
local json = require "dkjson"
local udpxfer = require "udpxfer"
local progress = require "udpxfer.progress"

local M = {}

M.VERSION = "0.2.0"

--- Exit codes, stable for scripts.
M.EXIT = { ok = 0, failed = 1, usage = 2, notfound = 3, corrupt = 4, io = 5 }

local code_exit = {
  noserver = M.EXIT.notfound, notfound = M.EXIT.notfound, refused = M.EXIT.notfound,
  version = M.EXIT.notfound, timeout = M.EXIT.notfound, corrupt = M.EXIT.corrupt, stale = M.EXIT.corrupt,
  unsafe = M.EXIT.corrupt, io = M.EXIT.io, usage = M.EXIT.usage, inuse = M.EXIT.io,
  broken = M.EXIT.failed, busy = M.EXIT.failed,
}

local EPILOG = [[
Exit codes: 0 ok, 1 failed (a broken stream, a busy receiver), 2 usage,
3 not found / no server or receiver answered, 4 verification failed,
5 local I/O error.]]

-- Value checks: each returns the value, or nil and why (argparse reports it).
local function integer(lo, hi, what)
  return function(s)
    local n = math.tointeger(tonumber(s))
    if not n or n < lo or n > hi then
      return nil, ("%s must be an integer from %d to %d, not %q"):format(what, lo, hi, s)
    end
    return n
  end
end

local function positive(what)
  return function(s)
    local n = tonumber(s)
    if not n or n <= 0 or n ~= n or n == math.huge then
      return nil, ("%s must be a number of seconds above 0, not %q"):format(what, s)
    end
    return n
  end
end

local function sha256_hex(s)
  if not s:match("^" .. ("%x"):rep(64) .. "$") then
    return nil, ("--sha256 must be 64 hex digits, not %q"):format(s)
  end
  return s:lower()
end

local core = udpxfer.core
local chunk_size = integer(core.MIN_CHUNK, core.MAX_CHUNK, "--chunk-size")

local function common_get(cmd)
  cmd:option("-p --port", "UDP port of the servers."):default(tostring(udpxfer.DEFAULT_PORT))
    :convert(integer(1, 65535, "--port"))
  cmd:option("--server", "Also ask HOST[:PORT] directly (repeatable; for routed networks)."):count("*")
    :argname("<host[:port]>")
  cmd:option("--broadcast", "Broadcast to ADDR instead of every interface's broadcast address "
    .. "(repeatable; 'none' for no broadcast)."):count("*"):argname("<addr|none>")
  cmd:option("--timeout", "Seconds to wait for a server to answer."):default("10")
    :convert(positive("--timeout"))
  cmd:flag("-q --quiet", "Print nothing but errors.")
  cmd:flag("--json", "Print JSON lines (events, progress, the result) on stdout.")
end

local function build()
  local p = argparse("udpxfer", "Reliable, fast file transfer over UDP on a LAN.")
    :epilog(EPILOG):add_help(true)
  p:command_target("command")
  p:require_command(false)
  p:flag("--version", "Print the version and exit.")

  local serve = p:command("serve server", "Make every regular file under DIR available.")
  serve:argument("dir", "The folder to serve."):args("?"):default("./data")
  serve:option("-p --port", "UDP port to listen on (0 picks a free one)."):default(tostring(udpxfer.DEFAULT_PORT))
    :convert(integer(0, 65535, "--port"))
  serve:option("--bind", "Local address to listen on."):default("0.0.0.0"):argname("<addr>")
  serve:option("--max-chunk", "Largest chunk size served."):convert(integer(core.MIN_CHUNK, core.MAX_CHUNK,
    "--max-chunk"))
  serve:option("--idle-timeout", "Seconds after which a silent client's session ends."):default("30")
    :convert(positive("--idle-timeout"))
  serve:flag("--legacy", "Also answer the original tool's \"get NAME\" (unauthenticated: off by default).")
  serve:option("--legacy-mbit", "Pacing of legacy transfers, Mbit/s."):default("80")
    :convert(positive("--legacy-mbit"))
  serve:flag("-q --quiet", "Log nothing but errors.")
  serve:flag("--json", "Log JSON lines.")

  local get = p:command("get", "Find NAME on the LAN, fetch it, verify it, print its path.")
  get:argument("name", "The file's name on the servers (a relative path)."):args("+")
  get:option("-o --out", "Folder to write into."):default(".")
  common_get(get)
  get:option("--chunk-size", "Bytes per chunk (default: the largest the route's MTU carries whole).")
    :convert(chunk_size)
  get:option("--sha256", "Take only the version with this SHA-256."):convert(sha256_hex)
  get:option("--idle-timeout", "Seconds after which a silent server is dropped."):default("5")
    :convert(positive("--idle-timeout"))
  get:flag("--legacy", "Speak the original tool's protocol (\"get NAME\", 1 KiB chunks).")

  local recv = p:command("recv", "Receive one byte stream and write it to stdout.")
  recv:option("-p --port", "UDP port to listen on (0 picks a free one)."):default(tostring(core.STREAM_PORT))
    :convert(integer(0, 65535, "--port"))
  recv:option("--bind", "Local address to listen on."):default("0.0.0.0"):argname("<addr>")
  recv:option("--timeout", "Seconds to wait for a sender (default: for ever)."):convert(positive("--timeout"))
  recv:option("--idle-timeout", "Seconds of silence that break the stream."):default("10")
    :convert(positive("--idle-timeout"))
  recv:flag("-v --verbose", "Log every datagram (SEND/RECV/DROP) to stderr.")
  recv:flag("-q --quiet", "Print nothing but errors.")

  local send = p:command("send", "Send stdin to a receiver as a byte stream.")
  send:argument("host", "The receiver, HOST[:PORT].")
  send:option("-p --port", "The receiver's UDP port when HOST has none."):default(tostring(core.STREAM_PORT))
    :convert(integer(1, 65535, "--port"))
  send:option("--timeout", "Seconds to keep trying to connect."):default("30"):convert(positive("--timeout"))
  send:option("--idle-timeout", "Seconds of silence that break the stream."):default("10")
    :convert(positive("--idle-timeout"))
  send:flag("-v --verbose", "Log every datagram (SEND/RECV/DROP) to stderr.")
  send:flag("-q --quiet", "Print nothing but errors.")

  p:command("help", "Show this help, or a command's: udpxfer help get."):argument("topic"):args("?")
  return p, { serve = serve, server = serve, get = get, recv = recv, send = send }
end

--- Parse argv. Returns the arguments table (`command` names the command),
-- or nil and a one-line message.
function M.parse(argv)
  local p = build()
  local ok, res = p:pparse(argv)
  if not ok then return nil, res end
  return res
end

local function stamp() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

local function emit(opt, out, ev, text)
  if opt.json then
    out:write(json.encode(ev), "\n")
  elseif not opt.quiet and text then
    out:write(text, "\n")
  end
  out:flush()
end

-- Test-only fault injection for `serve`, kept out of the options a user
-- sees: UDPXFER_TEST_FAULTS="corrupt=P,lie=P" (percent of chunks damaged
-- after hashing, or before it so their hashes match the wrong bytes).
local function test_faults()
  local spec, f = os.getenv("UDPXFER_TEST_FAULTS") or "", {}
  for k, v in spec:gmatch("(%w+)=([%d.]+)") do f[k] = tonumber(v) end
  return f.corrupt, f.lie
end

local function serve(opt, out, err)
  local corrupt, lie = test_faults()
  local srv, msg, code = udpxfer.serve {
    dir = opt.dir, port = opt.port, bind = opt.bind, max_chunk = opt.max_chunk,
    idle_timeout = opt.idle_timeout, corrupt_percent = corrupt, lie_percent = lie,
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
  emit(opt, out, { type = "listening", dir = opt.dir, port = srv:port() },
    ("serving %s on UDP port %d"):format(opt.dir, srv:port()))
  srv:run()
  return M.EXIT.ok
end

-- nil (the defaults), false (none) or the list given.
local function broadcast_list(list)
  if #list == 0 then return nil end
  if #list == 1 and list[1] == "none" then return false end
  return list
end

local function get_one(name, opt, out, err)
  local tty = not opt.quiet and not opt.json and core.isatty(2)
  local shown = false
  local talk = not opt.quiet and not opt.json
  local g, msg, code = udpxfer.get {
    name = name, out = opt.out, port = opt.port, servers = opt.server, broadcast = broadcast_list(opt.broadcast),
    timeout = opt.timeout, chunk_size = opt.chunk_size, sha256 = opt.sha256,
    idle_timeout = opt.idle_timeout, legacy = opt.legacy, progress_interval = opt.json and 0.5 or 0.1,
    on_start = function(ev)
      emit(opt, out, ev, nil)
      if not talk then return end
      err:write(("fetching %s (%s, %d chunks, sha256 %s) from %d server%s\n"):format(name,
        progress.bytes(ev.size), ev.chunks, ev.sha256:sub(1, 16), ev.servers, ev.servers == 1 and "" or "s"))
      if ev.versions > 1 then
        err:write(("%d versions offered by %d servers: taking sha256 %s, offered by %d\n"):format(
          ev.versions, ev.offers, ev.sha256, ev.servers))
      end
    end,
    on_preparing = function(ev)
      emit(opt, out, ev, nil)
      if talk then err:write(("server %s is preparing %s (hashing it); waiting\n"):format(ev.server, name)) end
    end,
    on_drop = function(ev)
      emit(opt, out, ev, nil)
      if talk then err:write(("dropped server %s (%s)\n"):format(ev.server, ev.reason)) end
    end,
    on_retry = function(ev)
      emit(opt, out, ev, nil)
      if not talk then return end
      if shown then err:write("\n") end
      err:write(("%s; fetching again without server %s (attempt %d)\n"):format(ev.message, ev.server, ev.attempt))
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

local function get(opt, out, err)
  local rc = M.EXIT.ok
  for _, name in ipairs(opt.name) do
    local r = get_one(name, opt, out, err)
    if r ~= M.EXIT.ok then rc = r end
  end
  return rc
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

local function recv(opt, _, err)
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

local function send(opt, _, err)
  local o = stream_opts(opt, err)
  o.host, o.fd = opt.host, 0
  local s, msg, code = udpxfer.send(o)
  if not s then
    err:write("udpxfer: ", msg, "\n")
    return code_exit[code] or M.EXIT.failed
  end
  return stream_end(s, opt, err, "sent")
end

local commands = { serve = serve, server = serve, get = get, recv = recv, send = send }

-- The command a help request is about: the first word naming one.
local function help_topic(argv, cmds)
  for _, a in ipairs(argv) do
    if a == "--" then break end
    if cmds[a] then return a end
  end
end

--- Run the CLI. `argv` is a list of strings; `out`/`err` default to
-- io.stdout/io.stderr. Returns the exit code.
function M.main(argv, out, err)
  out, err = out or io.stdout, err or io.stderr
  argv = argv or {}
  local parser, cmds = build()
  for _, a in ipairs(argv) do
    if a == "--" then break end
    if a == "-h" or a == "--help" then
      local topic = help_topic(argv, cmds)
      out:write((topic and cmds[topic] or parser):get_help(), "\n")
      return M.EXIT.ok
    end
  end
  local ok, opt = parser:pparse(argv)
  if not ok then
    local topic = help_topic(argv, cmds)
    err:write(("udpxfer: %s (see 'udpxfer %s--help')\n"):format(opt:match("^[^\n]*"), topic and topic .. " " or ""))
    return M.EXIT.usage
  end
  if opt.version then
    out:write("udpxfer ", M.VERSION, "\n")
    return M.EXIT.ok
  end
  if not opt.command or opt.command == "help" then
    out:write(((opt.topic and cmds[opt.topic]) or parser):get_help(), "\n")
    return M.EXIT.ok
  end
  return commands[opt.command](opt, out, err)
end

return M
