--- The `udpxfer` command line. `main(argv)` returns the process exit code.
local argparse = require "argparse"
local json = require "dkjson"
local udpxfer = require "udpxfer"
local progress = require "udpxfer.progress"

local M = {}

M.VERSION = "0.2.0"

--- Exit codes, stable for scripts.
M.EXIT = { ok = 0, failed = 1, usage = 2, notfound = 3, corrupt = 4, io = 5, sigint = 130, sigterm = 143 }

local code_exit = {
  noserver = M.EXIT.notfound, notfound = M.EXIT.notfound, refused = M.EXIT.notfound,
  version = M.EXIT.notfound, timeout = M.EXIT.notfound, corrupt = M.EXIT.corrupt, stale = M.EXIT.corrupt,
  unsafe = M.EXIT.corrupt, io = M.EXIT.io, usage = M.EXIT.usage, inuse = M.EXIT.io,
  broken = M.EXIT.failed, busy = M.EXIT.failed,
}

local EPILOG = [[
Exit codes: 0 ok, 1 failed (a broken stream, a busy receiver), 2 usage,
3 not found / no server or receiver answered, 4 verification failed,
5 local I/O error, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
Without --server or --broadcast, requests go to every interface's
broadcast address.]]

local core = udpxfer.core

-- ---- option values: each check returns the value, or nil and why ----

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

-- Linux interface names: at most 15 bytes, no slash or blank.
local function interface(s)
  if #s == 0 or #s > 15 or s:find("[/%s]") then
    return nil, ("--interface must be a network interface name, not %q"):format(s)
  end
  return s
end

-- A key file: 64 hex digits (udpxfer keygen), whitespace around them.
local function key_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, ("--key-file: cannot read %s"):format(err) end
  local text = f:read("a") or ""
  f:close()
  local hex = text:match("^%s*(%x+)%s*$")
  if not hex or #hex ~= 64 then
    return nil, ("--key-file %s must hold 64 hex digits (make one with: udpxfer keygen > KEY)"):format(path)
  end
  return hex:lower()
end

local function sha256_hex(s)
  if not s:match("^" .. ("%x"):rep(64) .. "$") then
    return nil, ("--sha256 must be 64 hex digits, not %q"):format(s)
  end
  return s:lower()
end

-- "100K", "2.5M", "1G" (bytes per second, 1024-based) as curl reads them.
local function rate(s)
  local n, unit = s:match("^(%d+%.?%d*)([kKmMgG]?)$")
  local mult = ({ [""] = 1, k = 1024, m = 1024 ^ 2, g = 1024 ^ 3 })[(unit or ""):lower()]
  local v = n and mult and math.floor(tonumber(n) * mult)
  if not v or v < 1 then return nil, ("--limit-rate must be bytes per second (100K, 2.5M, 1G), not %q"):format(s) end
  return v
end

local function share(s)
  local name, path = s:match("^([^=/]+)=(.+)$")
  if not name or name == "." or name == ".." then
    return nil, ("--share must be NAME=PATH (NAME a single folder name), not %q"):format(s)
  end
  return { name = name, path = path }
end

-- ---- the parser ----

local function discovery(cmd)
  cmd:option("-p --port", "UDP port of the servers."):default(tostring(udpxfer.DEFAULT_PORT))
    :convert(integer(1, 65535, "--port"))
  cmd:option("--server", "Also ask HOST[:PORT] directly (repeatable; for routed networks)."):count("*")
    :argname("<host[:port]>")
  cmd:option("--broadcast", "Broadcast to ADDR instead of every interface's broadcast address "
    .. "(repeatable; 'none' for no broadcast)."):count("*"):argname("<addr|none>")
  cmd:option("--timeout", "Seconds to wait for a server to answer."):default("10")
    :convert(positive("--timeout"))
  cmd:option("--key-file", "Shared-key mode: seal every datagram with the key in FILE (udpxfer keygen)."):argname("<file>")
    :convert(key_file)
  cmd:flag("-q --quiet", "Print nothing but errors.")
  cmd:flag("--json", "Print JSON lines (events, progress, the result) on stdout.")
end

local chunk_size = integer(core.MIN_CHUNK, core.MAX_CHUNK, "--chunk-size")

local function build()
  local p = argparse("udpxfer", "Reliable, fast file transfer and folder sync over UDP on a LAN.")
    :epilog(EPILOG):add_help(true)
  p:command_target("command")
  p:require_command(false)
  p:flag("--version", "Print the version and exit.")

  local serve = p:command("serve server", "Make every file under DIR (the tree \".\") and any shares available.")
  serve:argument("dir", "The folder to serve."):args("?"):default("./data")
  serve:option("--share", "Also serve PATH as the tree NAME (repeatable)."):count("*"):argname("<name=path>")
    :convert(share)
  serve:option("-p --port", "UDP port to listen on (0 picks a free one)."):default(tostring(udpxfer.DEFAULT_PORT))
    :convert(integer(0, 65535, "--port"))
  serve:option("--bind", "Local address to listen on (default: every address, IPv6 and IPv4); an IPv4 address "
    .. "still hears its subnet's broadcasts."):argname("<addr>")
  serve:option("--interface", "Send and receive only through network interface IFACE (e.g. eth0)."):argname("<iface>")
    :convert(interface)
  serve:option("--max-chunk", "Largest chunk size served."):convert(integer(core.MIN_CHUNK, core.MAX_CHUNK,
    "--max-chunk"))
  serve:option("--idle-timeout", "Seconds after which a silent client's session ends."):default("30")
    :convert(positive("--idle-timeout"))
  serve:option("--key-file", "Shared-key mode: answer only clients with the key in FILE; seal everything.")
    :argname("<file>"):convert(key_file)
  serve:option("--max-rate", "Send at most RATE bytes per second in all (K, M, G suffixes)."):convert(rate)
  serve:option("--client-rate", "Send at most RATE bytes per second to one client host."):convert(rate)
  serve:option("--client-sessions", "Transfers one client host may have at once (default 64, of 256).")
    :convert(integer(1, 256, "--client-sessions"))
  serve:flag("--legacy", "Also answer the original tool's \"get NAME\" (unauthenticated: off by default).")
  serve:option("--legacy-mbit", "Pacing of legacy transfers, Mbit/s."):default("80")
    :convert(positive("--legacy-mbit"))
  serve:flag("-q --quiet", "Log nothing but errors.")
  serve:flag("--json", "Log JSON lines.")

  local get = p:command("get", "Fetch files (or, with -r, a folder) from the LAN, verify them, print their paths.")
  get:argument("name", "The files' names on the servers (relative paths); with -r: REMOTE DIR."):args("+")
  get:option("-o --out", "Where to: a folder (the default: \".\"), a file name for one NAME, or - for stdout.")
  get:flag("--create-dirs", "Create the -o folder (and, with --parents, the folders of each NAME).")
  get:flag("--parents", "Keep NAME's folders under the -o folder (sub/dir/f goes to OUT/sub/dir/f).")
  get:flag("-f --force", "Replace OUT/f even when NAME has folders (without --parents, a/f and b/f both land there).")
  get:flag("-r --recursive", "Fetch the folder REMOTE into DIR, as `sync` without --delete.")
  get:option("--exclude", "With -r: leave out what matches GLOB (repeatable)."):count("*"):argname("<glob>")
  discovery(get)
  get:option("--chunk-size", "Bytes per chunk (default: the largest the route's MTU carries whole).")
    :convert(chunk_size)
  get:option("--sha256", "Take only the version with this SHA-256."):convert(sha256_hex)
  get:option("--idle-timeout", "Seconds after which a silent server is dropped."):default("5")
    :convert(positive("--idle-timeout"))
  get:flag("--legacy", "Speak the original tool's protocol (\"get NAME\", 1 KiB chunks).")
  get:flag("--no-resume", "Fetch everything again, ignoring partial files interrupted fetches left.")
  get:option("--limit-rate", "At most RATE bytes per second (K, M, G suffixes)."):convert(rate)
  get:option("--max-entries", "With -r: refuse a listing of more entries (default 1000000)."):argname("<n>")
    :convert(integer(1, 4294967294, "--max-entries"))

  local ls = p:command("ls", "List what the servers offer under REMOTE (a folder, \".\" or a share).")
  ls:argument("remote", "The folder."):args("?")
  discovery(ls)
  ls:option("--max-entries", "Refuse a listing of more entries (default 1000000)."):argname("<n>")
    :convert(integer(1, 4294967294, "--max-entries"))

  local sync = p:command("sync", "Make the local folder DIR match the folder REMOTE on the LAN.")
  sync:argument("remote", "The folder on the servers (a folder of a served tree, \".\", or a share).")
  sync:argument("dir", "The local folder (it must exist).")
  sync:flag("--delete", "Remove what REMOTE does not have (excluded entries stay).")
  sync:flag("-n --dry-run", "Change nothing; print what would change.")
  sync:option("--exclude", "Leave out what matches GLOB (repeatable; rsync's syntax)."):count("*")
    :argname("<glob>")
  sync:flag("-v --verbose", "Print each change.")
  discovery(sync)
  sync:option("--chunk-size", "Bytes per chunk."):convert(chunk_size)
  sync:option("--limit-rate", "At most about RATE bytes per second (K, M, G suffixes)."):convert(rate)
  sync:option("--max-entries", "Refuse a listing of more entries (default 1000000)."):argname("<n>")
    :convert(integer(1, 4294967294, "--max-entries"))

  local recv = p:command("recv", "Receive one byte stream and write it to stdout.")
  recv:option("-p --port", "UDP port to listen on (0 picks a free one)."):default(tostring(core.STREAM_PORT))
    :convert(integer(0, 65535, "--port"))
  recv:option("--bind", "Local address to listen on (default: every address, IPv6 and IPv4)."):argname("<addr>")
  recv:option("--timeout", "Seconds to wait for a sender (default: for ever)."):convert(positive("--timeout"))
  recv:option("--idle-timeout", "Seconds of silence that break the stream."):default("10")
    :convert(positive("--idle-timeout"))
  recv:option("--key-file", "Shared-key mode: take only a sender with the key in FILE."):argname("<file>")
    :convert(key_file)
  recv:flag("-v --verbose", "Log every datagram (SEND/RECV/DROP) to stderr.")
  recv:flag("-q --quiet", "Print nothing but errors.")

  local send = p:command("send", "Send stdin to a receiver as a byte stream.")
  send:argument("host", "The receiver, HOST[:PORT].")
  send:option("-p --port", "The receiver's UDP port when HOST has none."):default(tostring(core.STREAM_PORT))
    :convert(integer(1, 65535, "--port"))
  send:option("--timeout", "Seconds to keep trying to connect."):default("30"):convert(positive("--timeout"))
  send:option("--idle-timeout", "Seconds of silence that break the stream."):default("10")
    :convert(positive("--idle-timeout"))
  send:option("--key-file", "Shared-key mode: seal the stream with the key in FILE."):argname("<file>")
    :convert(key_file)
  send:flag("-v --verbose", "Log every datagram (SEND/RECV/DROP) to stderr.")
  send:flag("-q --quiet", "Print nothing but errors.")

  p:command("keygen", "Print a new random shared key (64 hex digits) for --key-file.")
  p:command("help", "Show this help, or a command's: udpxfer help get."):argument("topic"):args("?")
  return p, { serve = serve, server = serve, get = get, ls = ls, sync = sync, recv = recv, send = send }
end

--- Parse argv. Returns the arguments table (`command` names the command),
-- or nil and a one-line message.
function M.parse(argv)
  local p = build()
  local ok, res = p:pparse(argv)
  if not ok then return nil, res end
  return res
end

-- ---- output ----

local function stamp() return os.date("!%Y-%m-%dT%H:%M:%SZ") end

-- Text a peer sent, fit to print: no control characters.
local function clean(s) return (tostring(s):gsub("[%c\127]", "?")) end

-- S in double quotes for a log line: control characters (C0, DEL, C1 as
-- UTF-8), quotes and backslashes escaped, so a name cannot forge a line.
local function quoted(s)
  local esc = { ["\n"] = "\\n", ["\t"] = "\\t", ['"'] = '\\"', ["\\"] = "\\\\" }
  s = tostring(s):gsub("[%c\"\\\127]", function(c) return esc[c] or ("\\x%02x"):format(c:byte()) end)
  return '"' .. s:gsub("\194([\128-\159])", function(c) return ("\\xc2\\x%02x"):format(c:byte()) end) .. '"'
end

local function emit(opt, out, ev, text)
  if opt.json then
    out:write(json.encode(ev), "\n")
  elseif not opt.quiet and text then
    out:write(text, "\n")
  end
  out:flush()
end

--- A progress line on stderr that redraws in place and never wraps.
local function status_line(err)
  local shown = false
  return {
    show = function(text)
      err:write("\r", text, "\27[K")
      shown = true
    end,
    clear = function()
      if shown then err:write("\r\27[K") end
      shown = false
    end,
  }
end

local function width() return core.term_width(2) or 80 end

-- Drive OBJ to its end; SIGINT/SIGTERM (caught since main began) abort
-- it. Returns what result() returns, or nil, message, "signal", exit code.
local function drive(obj)
  while not obj:step() do
    local sig = core.signaled()
    if sig then
      obj:abort()
      return nil, sig == 2 and "interrupted" or "terminated", "signal", sig == 2 and M.EXIT.sigint or M.EXIT.sigterm
    end
    local ok, msg = core.poll({ obj:pollfd(), obj:events() }, obj:timeout())
    if not ok then return nil, msg, "io" end
  end
  return obj:result()
end

local function fail(err, msg, code, rc)
  err:write("udpxfer: ", clean(msg), "\n")
  return rc or code_exit[code] or M.EXIT.failed
end

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

-- nil (the defaults), false (none) or the list given.
local function broadcast_list(list)
  if #list == 0 then return nil end
  if #list == 1 and list[1] == "none" then return false end
  return list
end

-- ---- sync (and get -r) ----

local function sync_cmd(remote, dir, opt, out, err, delete)
  local talk, line = not opt.quiet and not opt.json, status_line(err)
  local tty = talk and core.isatty(2)
  local s, msg, code = udpxfer.sync {
    remote = remote, dir = dir, delete = delete, dry_run = opt.dry_run, exclude = opt.exclude,
    port = opt.port, servers = opt.server, broadcast = broadcast_list(opt.broadcast), timeout = opt.timeout,
    chunk_size = opt.chunk_size, limit_rate = opt.limit_rate, progress_interval = opt.json and 0.5 or 0.1,
    key = opt.key_file, max_entries = opt.max_entries,
    on_file = function(ev)
      if opt.json then return emit(opt, out, ev) end
      if not talk then return end
      if ev.action == "error" or ev.action == "skip" or opt.verbose or opt.dry_run then
        line.clear()
        err:write(("%s%s %s%s\n"):format(opt.dry_run and "would " or "", ev.action, clean(ev.path),
          ev.message and ": " .. clean(ev.message) or ""))
      end
    end,
    on_progress = function(st)
      if opt.json then
        emit(opt, out, { type = "progress", files_done = st.files_done, files_todo = st.files_todo,
          bytes_done = st.bytes_done, bytes_total = st.bytes_total, elapsed = st.elapsed })
      elseif tty and st.phase == "fetch" then
        line.show(progress.sync_line(remote, st, width()))
      end
    end,
  }
  if not s then return fail(err, msg, code) end
  local res, emsg, ecode, rc = drive(s)
  line.clear()
  s:close()
  if not res then
    emit(opt, out, { type = "error", message = emsg, code = ecode })
    return fail(err, emsg, ecode, rc)
  end
  emit(opt, out, res, ("%s%s -> %s: %d files, %d changed, %d deleted; fetched %s, reused %s, %s on the wire, in %.2f s")
    :format(opt.dry_run and "(dry run) " or "", remote, dir, res.files, res.changed, res.deleted,
      progress.bytes(res.bytes_fetched), progress.bytes(res.bytes_reused), progress.bytes(res.bytes_wire), res.elapsed))
  return M.EXIT.ok
end

local function sync(opt, out, err) return sync_cmd(opt.remote, opt.dir, opt, out, err, opt.delete) end

-- ---- get ----

-- Where one NAME goes: { out = folder, as = file name } or { root, path }
-- for --parents, or nil and why (a usage error).
local function destination(name, opt, several)
  local o = opt.out or "."
  local st = core.dir(o)
  if st then st:close() end
  local is_dir = st ~= nil or o:sub(-1) == "/"
  if opt.create_dirs and (several or opt.parents or o:sub(-1) == "/") and not st then
    os.execute("mkdir -p -- '" .. o:gsub("'", "'\\''") .. "'")
    is_dir = true
  end
  if not is_dir then
    if several then return nil, ("-o %s must be a folder to take several files"):format(o) end
    local folder, base = o:match("^(.*)/([^/]+)$")
    return { out = folder or ".", as = base or o }
  end
  if opt.parents then
    local folder = name:match("^(.*)/[^/]*$")
    if folder then
      local d = assert(core.dir(o))
      local built = ""
      for part in folder:gmatch("[^/]+") do
        built = built == "" and part or built .. "/" .. part
        local ok, e = d:mkdir(built, 0755)
        if not ok then
          d:close()
          return nil, e
        end
      end
      d:close()
    end
    return { root = o, path = name }
  end
  local base = name:match("([^/]+)$") or name
  if name:find("/", 1, true) and not opt.force then
    local d = core.dir(o)
    local there = d and d:stat(base)
    if d then d:close() end
    if there then
      return nil, ("%s/%s exists; --parents keeps %s's folders, --force replaces it"):format(o, base, name)
    end
  end
  return { out = o }
end

local function get_one(name, opt, out, err, several)
  if opt.out == "-" and several then return fail(err, "-o - takes one NAME", "usage") end
  local to, why = { memory = true }, nil
  if opt.out ~= "-" then to, why = destination(name, opt, several) end
  if not to then return fail(err, why, "usage") end
  local talk, line = not opt.quiet and not opt.json, status_line(err)
  local tty = talk and core.isatty(2)
  local g, msg, code = udpxfer.get {
    name = name, out = to.out, as = to.as, root = to.root, path = to.path, memory = to.memory,
    port = opt.port, servers = opt.server, broadcast = broadcast_list(opt.broadcast),
    timeout = opt.timeout, chunk_size = opt.chunk_size, sha256 = opt.sha256,
    idle_timeout = opt.idle_timeout, legacy = opt.legacy, limit_rate = opt.limit_rate,
    progress_interval = opt.json and 0.5 or 0.1, key = opt.key_file, resume = not opt.no_resume,
    on_start = function(ev)
      emit(opt, out, ev, nil)
      if talk and ev.versions > 1 then
        line.clear()
        err:write(("%d versions offered by %d servers: taking sha256 %s, offered by %d\n"):format(
          ev.versions, ev.offers, ev.sha256, ev.servers))
      end
    end,
    on_preparing = function(ev)
      emit(opt, out, ev, nil)
      if talk then err:write(("server %s is preparing %s (hashing it); waiting\n"):format(ev.server, clean(name))) end
    end,
    on_drop = function(ev)
      emit(opt, out, ev, nil)
      if talk then
        line.clear()
        err:write(("dropped server %s (%s)\n"):format(ev.server, ev.reason))
      end
    end,
    on_retry = function(ev)
      emit(opt, out, ev, nil)
      if not talk then return end
      line.clear()
      err:write(("%s; fetching again, every chunk checked against the file's tree\n"):format(ev.message))
    end,
    on_progress = function(st)
      if opt.json then
        emit(opt, out, { type = "progress", bytes = st.bytes, size = st.size, elapsed = st.elapsed,
          servers = st.servers })
      elseif tty and st.state == "transfer" then
        line.show(progress.line(name, st, width()))
      end
    end,
  }
  if not g then return fail(err, msg, code) end
  local res, emsg, ecode, rc = drive(g)
  line.clear()
  if not res then
    g:close()
    emit(opt, out, { type = "error", message = emsg, code = ecode, name = name }, nil)
    return fail(err, ("%s: %s"):format(name, emsg), ecode, rc)
  end
  local st = g:stats()
  g:close()
  if to.memory then
    io.stdout:write(res.data)
    io.stdout:flush()
    res.data = nil
  end
  res.servers = st.servers
  res.rate = st.elapsed > 0 and (st.bytes + st.reused) / st.elapsed or 0
  res.bytes_fetched, res.bytes_reused = st.bytes, st.reused
  local n = 0
  for _, s in ipairs(st.servers) do if s.bytes > 0 then n = n + 1 end end
  if opt.json then
    emit(opt, out, res)
  elseif not to.memory then
    if not opt.quiet then out:write(res.path, "\n") end
    if talk then
      local resumed = st.reused > 0 and (", %s resumed"):format(progress.bytes(st.reused)) or ""
      err:write(("%s: %s in %.2f s (%s/s), sha256 %s, from %d server%s%s\n"):format(clean(name),
        progress.bytes(res.size), res.elapsed, progress.bytes(res.rate), res.sha256, n, n == 1 and "" or "s", resumed))
    end
  end
  return M.EXIT.ok
end

local function get(opt, out, err)
  if opt.recursive then
    if #opt.name ~= 2 then return fail(err, "get -r takes REMOTE DIR (see 'udpxfer get --help')", "usage") end
    return sync_cmd(opt.name[1], opt.name[2], opt, out, err, false)
  end
  local rc = M.EXIT.ok
  for _, name in ipairs(opt.name) do
    local r = get_one(name, opt, out, err, #opt.name > 1)
    if r >= 128 then return r end
    if r ~= M.EXIT.ok then rc = r end
  end
  return rc
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
      e.type_ = nil
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

local function keygen(_, out, err)
  local key, msg, code = core.random_bytes(32)
  if not key then return fail(err, msg, code) end
  out:write((key:gsub(".", function(c) return ("%02x"):format(c:byte()) end)), "\n")
  return M.EXIT.ok
end

local commands = { serve = serve, server = serve, get = get, ls = ls, sync = sync, recv = recv, send = send,
  keygen = keygen }

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
  core.catch_signals() -- from here on SIGINT/SIGTERM end a command cleanly, however early they come
  return commands[opt.command](opt, out, err)
end

return M
