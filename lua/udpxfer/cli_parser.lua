--- The command line's options: every command, its options and their
-- checks (argparse), parsed into the table the commands take.
local argparse = require "argparse"
local udpxfer = require "udpxfer"

local core = udpxfer.core

local M = {}

local EPILOG = [[
Exit codes: 0 ok, 1 failed (a broken stream, a busy receiver), 2 usage,
3 not found / no server or receiver answered, 4 verification failed,
5 local I/O error, 130 interrupted (SIGINT), 143 terminated (SIGTERM).
Without --server or --broadcast, requests go to every interface's
broadcast address.]]

local GET_EPILOG = [[
A file already at the destination is the local copy: only the chunks that
differ are fetched, and the new file replaces it only once its SHA-256
matched. A folder there is never replaced; a symlink (never followed), a
FIFO, socket or device, or a file that cannot be read is left as it is
(exit 5) unless --force replaces it.]]

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
  local text = f:read(256) or "" -- a key is 64 digits: /dev/zero is not read to its end
  f:close()
  local hex = text:match("^%s*(%x+)%s*$")
  if not hex or #hex ~= 64 then
    return nil, ("--key-file %s must hold 64 hex digits (make one with: udpxfer keygen -o KEY)"):format(path)
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
  cmd:option("--server", "Ask HOST[:PORT] directly (repeatable; without --broadcast, nothing is broadcast)."):count("*")
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

-- What send and recv share; KEY_USE says what the key does for the command.
local function stream_options(cmd, key_use)
  cmd:option("--idle-timeout", "Seconds of silence that break the stream."):default("10")
    :convert(positive("--idle-timeout"))
  cmd:option("--key-file", "Shared-key mode: " .. key_use .. "."):argname("<file>"):convert(key_file)
  cmd:flag("-v --verbose", "Log every datagram (SEND/RECV/DROP) to stderr.")
  cmd:flag("-q --quiet", "Print nothing but errors.")
end

local chunk_size = integer(core.MIN_CHUNK, core.MAX_CHUNK, "--chunk-size")

--- The parser, and its commands by name.
function M.build()
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
    :epilog(GET_EPILOG)
  get:argument("name", "The files' names on the servers (relative paths); with -r: REMOTE DIR."):args("+")
  get:option("-o --out", "Where to: a folder (the default: \".\"), a file name for one NAME, or - for stdout.")
  get:flag("--create-dirs", "Create the -o folder (and, with --parents, the folders of each NAME).")
  get:flag("--parents", "Keep NAME's folders under the -o folder (sub/dir/f goes to OUT/sub/dir/f).")
  get:flag("-f --force", "Replace OUT/f when NAME has folders (a/f and b/f both land there), or when it is a symlink "
    .. "(the link, not its target), FIFO, device or unreadable file; never a folder.")
  get:flag("-r --recursive", "Fetch the folder REMOTE into DIR, as `sync` without --delete.")
  get:option("--exclude", "With -r: leave out what matches GLOB (repeatable)."):count("*"):argname("<glob>")
  get:flag("--perms-all", "With -r: apply setuid, setgid and sticky bits from the listing too.")
  discovery(get)
  get:option("--chunk-size", "Bytes per chunk (default: the largest the route's MTU carries whole).")
    :convert(chunk_size)
  get:option("--sha256", "Take only the version with this SHA-256."):convert(sha256_hex)
  get:option("--idle-timeout", "Seconds after which a silent server is dropped."):default("5")
    :convert(positive("--idle-timeout"))
  get:flag("--legacy", "Speak the original tool's protocol (\"get NAME\", 1 KiB chunks).")
  get:flag("--no-resume", "Fetch every byte again: reuse neither the file at the destination nor partial files "
    .. "interrupted fetches left.")
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
  sync:flag("--perms-all", "Apply setuid, setgid and sticky bits from the listing too (dropped by default).")
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
  stream_options(recv, "take only a sender with the key in FILE")

  local send = p:command("send", "Send stdin to a receiver as a byte stream.")
  send:argument("host", "The receiver, HOST[:PORT].")
  send:option("-p --port", "The receiver's UDP port when HOST has none."):default(tostring(core.STREAM_PORT))
    :convert(integer(1, 65535, "--port"))
  send:option("--timeout", "Seconds to keep trying to connect."):default("30"):convert(positive("--timeout"))
  stream_options(send, "seal the stream with the key in FILE")

  local keygen = p:command("keygen", "Make a new random shared key (64 hex digits) for --key-file.")
  keygen:option("-o --output", "Write it to FILE, readable by you only (default: print it)."):argname("<file>")
  p:command("help", "Show this help, or a command's: udpxfer help get."):argument("topic"):args("?")
  return p, { serve = serve, server = serve, get = get, ls = ls, sync = sync, recv = recv, send = send }
end

--- Parse argv. Returns the arguments table (`command` names the command),
-- or nil and a one-line message.
function M.parse(argv)
  local p = M.build()
  local ok, res = p:pparse(argv)
  if not ok then return nil, res end
  return res
end

--- The command a help request is about: the first word naming one.
function M.help_topic(argv, cmds)
  for _, a in ipairs(argv) do
    if a == "--" then break end
    if cmds[a] then return a end
  end
end

---- An option's value that looks like a negative number ("--timeout -1")
-- is joined to it ("--timeout=-1"), so the parser takes it as the value
-- (and the value's check says what is wrong) instead of an unknown option.
function M.join_negatives(argv)
  local out, i = {}, 1
  while i <= #argv do
    local a, v = argv[i], argv[i + 1]
    if a == "--" then
      table.move(argv, i, #argv, #out + 1, out)
      break
    end
    if v and v:match("^%-[%d.]") and a:match("^%-%-?%a[%w-]*$") then
      out[#out + 1] = (a:sub(2, 2) == "-" and a .. "=" or a) .. v
      i = i + 2
    else
      out[#out + 1] = a
      i = i + 1
    end
  end
  return out
end

return M
