--- The `udpxfer` command line. `main(argv)` returns the process exit code.
-- The options are cli_parser.lua's, what it prints cli_output.lua's, get
-- and sync cli_fetch.lua's; serve, ls, the streams and keygen are here.
local udpxfer = require "udpxfer"
local progress = require "udpxfer.progress"
local parser_mod = require "udpxfer.cli_parser"
local output = require "udpxfer.cli_output"
local fetch = require "udpxfer.cli_fetch"

local core = udpxfer.core
local emit, fail, clean, quoted, stamp = output.emit, output.fail, output.clean, output.quoted, output.stamp
local drive, broadcast_list = fetch.drive, fetch.broadcast_list

local M = {}

M.VERSION = "0.2.0"

--- Exit codes, stable for scripts.
M.EXIT = output.EXIT

--- Parse argv. Returns the arguments table (`command` names the command),
-- or nil and a one-line message.
M.parse = parser_mod.parse

-- ---- serve ----

-- Test-only fault injection, kept out of the options a user sees:
-- UDPXFER_TEST_FAULTS="corrupt=P,lie=P" (percent of chunks damaged after
-- hashing, or before it so their hashes match the wrong bytes).
local function test_faults()
  local spec, f = os.getenv("UDPXFER_TEST_FAULTS") or "", {}
  for k, v in spec:gmatch("(%w+)=([%d.]+)") do f[k] = tonumber(v) end
  return f.corrupt, f.lie
end

local function serve(opt, out, err)
  local corrupt, lie = test_faults()
  local shares = {}
  for _, s in ipairs(opt.share) do shares[s.name] = s.path end
  local srv, msg, code = udpxfer.serve {
    dir = opt.dir, shares = shares, port = opt.port, bind = opt.bind, interface = opt.interface,
    max_chunk = opt.max_chunk, max_rate = opt.max_rate, host_rate = opt.client_rate, key = opt.key_file,
    host_sessions = opt.client_sessions,
    idle_timeout = opt.idle_timeout, corrupt_percent = corrupt, lie_percent = lie,
    legacy = opt.legacy, legacy_mbit = opt.legacy_mbit,
    on_request = function(ev)
      ev.time = stamp()
      emit(opt, out, ev, ("%s request %s %s%s %s"):format(ev.time, ev.client, ev.kind == "listing" and "listing " or "",
        quoted(ev.name), ev.status))
    end,
    on_done = function(ev)
      ev.time = stamp()
      emit(opt, out, ev, ("%s done %s %s %s sent %s in %.2fs"):format(ev.time, ev.client, quoted(ev.name),
        ev.reason, progress.bytes(ev.bytes_sent), ev.elapsed))
    end,
    on_unauthentic = function(ev)
      ev.time, ev.name, ev.size = stamp(), nil, nil
      emit(opt, out, ev, ("%s unauthentic %s %d sealed under another key, %d without a key (a client with the "
        .. "wrong --key-file?)"):format(ev.time, ev.client, ev.sealed, ev.keyless))
    end,
  }
  if not srv then return fail(err, msg, code) end
  if opt.legacy then
    err:write("udpxfer: warning: --legacy answers the original tool's unauthenticated requests: any host can "
      .. "have files sent to any address (bounded to ", progress.bytes(opt.legacy_mbit * 125000), "/s per address)\n")
  end
  emit(opt, out, { type = "listening", dir = opt.dir, port = srv:port(), shares = opt.share },
    ("serving %s on UDP port %d"):format(opt.dir, srv:port()))
  local _, _, ecode, rc = drive(srv)
  srv:close()
  return ecode == "signal" and rc or M.EXIT.ok
end

-- ---- ls ----

local function mode_string(e)
  local s = { e.type == "dir" and "d" or e.type == "link" and "l" or "-" }
  for shift = 6, 0, -3 do
    local bits = (e.mode >> shift) & 7
    s[#s + 1] = (bits & 4 ~= 0 and "r" or "-") .. (bits & 2 ~= 0 and "w" or "-") .. (bits & 1 ~= 0 and "x" or "-")
  end
  return table.concat(s)
end

local function ls(opt, out, err)
  local remote = opt.remote or "."
  local common = { port = opt.port, servers = opt.server, broadcast = broadcast_list(opt.broadcast),
    timeout = opt.timeout, key = opt.key_file, max_entries = opt.max_entries }
  common.remote = remote
  local l, msg, code = udpxfer.list(common)
  if not l then return fail(err, msg, code) end
  local res, emsg, ecode, rc = drive(l)
  l:close()
  if not res then return fail(err, ("%s: %s"):format(remote, emsg), ecode, rc) end
  local shares
  if not opt.remote then
    common.remote = ""
    local t = udpxfer.list(common)
    local tres = t and drive(t)
    if t then t:close() end
    shares = {}
    for _, e in ipairs(tres and tres.entries or {}) do
      if e.path ~= "." then shares[#shares + 1] = e.path end
    end
  end
  if opt.json then
    for _, e in ipairs(res.entries) do
      emit(opt, out, { type = "entry", path = e.path, kind = e.type, size = e.size, mtime = e.mtime, mode = e.mode,
        sha256 = e.sha256, target = e.target, servers = e.servers })
    end
    emit(opt, out, { type = "done", remote = remote, servers = res.servers, versions = res.versions,
      entries = #res.entries, shares = shares })
    return M.EXIT.ok
  end
  for _, e in ipairs(res.entries) do
    if e.path ~= "." then
      local when = os.date("!%Y-%m-%d %H:%M", e.mtime // 1000000000)
      out:write(("%s %12s  %s  %d  %s%s\n"):format(mode_string(e), e.size and tostring(e.size) or "-", when,
        e.servers, clean(e.path) .. (e.type == "dir" and "/" or ""), e.target and " -> " .. clean(e.target) or ""))
    end
  end
  if not opt.quiet then
    err:write(("%d entries under %s, from %d server%s%s%s\n"):format(#res.entries - 1, remote, res.servers,
      res.servers == 1 and "" or "s", res.versions > 1 and (" (%d versions)"):format(res.versions) or "",
      shares and #shares > 0 and "; shares: " .. table.concat(shares, ", ") or ""))
  end
  return M.EXIT.ok
end

-- ---- streams ----

local function stream_opts(opt, err)
  return {
    port = opt.port, bind = opt.bind, timeout = opt.timeout, idle_timeout = opt.idle_timeout,
    key = opt.key_file,
    on_log = opt.verbose and function(l) err:write(l, "\n") end or nil,
    on_connect = function(ev)
      if not opt.quiet then err:write(("connected to %s (stream %s)\n"):format(ev.peer, ev.id)) end
    end,
  }
end

local function stream_end(s, opt, err, verb)
  local res, emsg, ecode, rc = drive(s)
  if not res then
    s:close()
    return fail(err, emsg, ecode, rc)
  end
  local st = s:stats()
  s:close()
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
  if not r then return fail(err, msg, code) end
  if not opt.quiet then err:write(("receiving on UDP port %d\n"):format(r:port())) end
  return stream_end(r, opt, err, "received")
end

local function send(opt, _, err)
  local o = stream_opts(opt, err)
  o.host, o.fd = opt.host, 0
  local s, msg, code = udpxfer.send(o)
  if not s then return fail(err, msg, code) end
  return stream_end(s, opt, err, "sent")
end

local function keygen(opt, out, err)
  local key, msg, code = core.random_bytes(32)
  if not key then return fail(err, msg, code) end
  local text = key:gsub(".", function(c) return ("%02x"):format(c:byte()) end) .. "\n"
  if opt.output then
    local ok, wmsg = core.write_private(opt.output, text)
    if not ok then return fail(err, wmsg, "io") end
    return M.EXIT.ok
  end
  out:write(text)
  out:flush()
  local mode = out == io.stdout and core.file_mode(1)
  if mode and mode & 0x3f ~= 0 then -- 077: group or others may read or write it
    err:write(("udpxfer: warning: the key went to a file others can read (mode %o): chmod 600 it, "
      .. "or make it with udpxfer keygen -o KEY\n"):format(mode))
  end
  return M.EXIT.ok
end

local commands = { serve = serve, server = serve, get = fetch.get, ls = ls, sync = fetch.sync, recv = recv, send = send,
  keygen = keygen }

--- Run the CLI. `argv` is a list of strings; `out`/`err` default to
-- io.stdout/io.stderr. Returns the exit code.
function M.main(argv, out, err)
  out, err = out or io.stdout, err or io.stderr
  argv = parser_mod.join_negatives(argv or {})
  local parser, cmds = parser_mod.build()
  for _, a in ipairs(argv) do
    if a == "--" then break end
    if a == "-h" or a == "--help" then
      local topic = parser_mod.help_topic(argv, cmds)
      out:write((topic and cmds[topic] or parser):get_help(), "\n")
      return M.EXIT.ok
    end
  end
  local ok, opt = parser:pparse(argv)
  if not ok then
    local topic = parser_mod.help_topic(argv, cmds)
    err:write(("udpxfer: %s (see 'udpxfer %s--help')\n"):format(opt:match("^[^\n]*"), topic and topic .. " " or ""))
    return M.EXIT.usage
  end
  if opt.version then
    out:write("udpxfer ", M.VERSION, "\n")
    return M.EXIT.ok
  end
  if opt.command == "help" and (not opt.topic or cmds[opt.topic]) then
    out:write(((opt.topic and cmds[opt.topic]) or parser):get_help(), "\n")
    return M.EXIT.ok
  end
  if not opt.command or opt.command == "help" then -- nothing to do: the usage, and a usage error
    err:write(parser:get_usage(), "\n")
    if opt.topic then err:write(("udpxfer: no command %q (see 'udpxfer --help')\n"):format(opt.topic)) end
    return M.EXIT.usage
  end
  core.catch_signals() -- from here on SIGINT/SIGTERM end a command cleanly, however early they come
  return commands[opt.command](opt, out, err)
end

return M
