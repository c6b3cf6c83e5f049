--- The command line's transfers: get (files, or a folder with -r) and
-- sync, and the loop that drives an object under SIGINT and SIGTERM.
local udpxfer = require "udpxfer"
local progress = require "udpxfer.progress"
local output = require "udpxfer.cli_output"

local core = udpxfer.core
local EXIT = output.EXIT
local emit, fail, clean, status_line, width = output.emit, output.fail, output.clean, output.status_line, output.width

local M = {}

--- Drive OBJ to its end; SIGINT/SIGTERM (caught since main began) abort
-- it. Returns what result() returns, or nil, message, "signal", exit code.
function M.drive(obj)
  while not obj:step() do
    local sig = core.signaled()
    if sig then
      obj:abort()
      return nil, sig == 2 and "interrupted" or "terminated", "signal", sig == 2 and EXIT.sigint or EXIT.sigterm
    end
    local ok, msg = core.poll({ obj:pollfd(), obj:events() }, obj:timeout())
    if not ok then return nil, msg, "io" end
  end
  return obj:result()
end

--- The --broadcast values: nil (the defaults), false (none) or the list given.
function M.broadcast_list(list)
  if #list == 0 then return nil end
  if #list == 1 and list[1] == "none" then return false end
  return list
end

-- ---- sync (and get -r) ----

local function sync_cmd(remote, dir, opt, out, err, delete)
  if opt.create_dirs then
    local ok, msg = core.mkdirs(dir)
    if not ok then return fail(err, msg, "io") end
  end
  local talk, line = not opt.quiet and not opt.json, status_line(err)
  local skipped = 0
  local tty = talk and core.isatty(2)
  local s, msg, code = udpxfer.sync {
    remote = remote, dir = dir, delete = delete, dry_run = opt.dry_run, exclude = opt.exclude,
    perms_all = opt.perms_all or nil,
    port = opt.port, servers = opt.server, broadcast = M.broadcast_list(opt.broadcast), timeout = opt.timeout,
    chunk_size = opt.chunk_size, limit_rate = opt.limit_rate, progress_interval = opt.json and 0.5 or 0.1,
    key = opt.key_file, max_entries = opt.max_entries,
    on_file = function(ev)
      if ev.unsafe_link then skipped = skipped + 1 end
      if opt.json then return not opt.quiet and emit(opt, out, ev) end -- --json -q: the summary alone
      if not talk then return end
      -- a skipped link is the listing's, every time: said once per run in the summary
      if ev.action == "error" or (ev.action == "skip" and not ev.unsafe_link) or opt.verbose or opt.dry_run then
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
  local res, emsg, ecode, rc = M.drive(s)
  line.clear()
  s:close()
  if not res then
    emit(opt, out, { type = "error", message = emsg, code = ecode })
    return fail(err, emsg, ecode, rc)
  end
  emit(opt, out, res, ("%s%s -> %s: %d files, %d changed, %d deleted; fetched %s, reused %s, %s on the wire, in %.2f s%s")
    :format(opt.dry_run and "(dry run) " or "", remote, dir, res.files, res.changed, res.deleted,
      progress.bytes(res.bytes_fetched), progress.bytes(res.bytes_reused), progress.bytes(res.bytes_wire), res.elapsed,
      skipped > 0 and not opt.verbose
        and ("; %d link%s skipped (they lead out of the tree; -v names them)"):format(skipped, skipped == 1 and "" or "s")
        or ""))
  return EXIT.ok
end

--- sync REMOTE DIR.
function M.sync(opt, out, err) return sync_cmd(opt.remote, opt.dir, opt, out, err, opt.delete) end

-- ---- get ----

-- Where one NAME goes: { out = folder, as = file name } or { root, path }
-- for --parents, or nil and why (a usage error).
local function destination(name, opt, several)
  local o = opt.out or "."
  local st = core.dir(o)
  if st then st:close() end
  local is_dir = st ~= nil or o:sub(-1) == "/"
  if opt.create_dirs and not st then -- --create-dirs: -o names a folder, made here
    local ok, msg = core.mkdirs(o)
    if not ok then return nil, msg, "io" end
    is_dir = true
  end
  if not is_dir then
    if several then return nil, ("-o %s must be a folder to take several files (or add --create-dirs)"):format(o) end
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

-- NAME was not found: is it a folder the servers have? (One listing
-- request, only after a failure.)
local function folder_hint(name, opt)
  local l = udpxfer.list { remote = name, port = opt.port, servers = opt.server,
    broadcast = M.broadcast_list(opt.broadcast), timeout = math.min(opt.timeout, 2), key = opt.key_file }
  local res = l and l:run()
  if l then l:close() end
  return res and (" (a folder on the servers: udpxfer get -r %s DIR fetches it)"):format(name) or ""
end

local function get_one(name, opt, out, err, several)
  local to, why, wcode = { memory = true }, nil, nil
  if opt.out ~= "-" then to, why, wcode = destination(name, opt, several) end
  if not to then return fail(err, why, wcode or "usage") end
  local talk, line = not opt.quiet and not opt.json, status_line(err)
  local tty = talk and core.isatty(2)
  local g, msg, code = udpxfer.get {
    name = name, out = to.out, as = to.as, root = to.root, path = to.path, memory = to.memory,
    port = opt.port, servers = opt.server, broadcast = M.broadcast_list(opt.broadcast),
    timeout = opt.timeout, chunk_size = opt.chunk_size, sha256 = opt.sha256,
    idle_timeout = opt.idle_timeout, legacy = opt.legacy, limit_rate = opt.limit_rate,
    progress_interval = opt.json and 0.5 or 0.1, key = opt.key_file, resume = not opt.no_resume,
    force = opt.force,
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
  local res, emsg, ecode, rc = M.drive(g)
  line.clear()
  if not res then
    g:close()
    if ecode == "notfound" then emsg = emsg .. folder_hint(name, opt) end
    emit(opt, out, { type = "error", message = emsg, code = ecode, name = name }, nil)
    return fail(err, ("%s: %s"):format(name, emsg), ecode, rc)
  end
  local st, wire = g:stats(), g.link:stats().rx_bytes
  g:close()
  if to.memory then
    io.stdout:write(res.data)
    io.stdout:flush()
    res.data = nil
  end
  res.servers = st.servers
  res.rate = st.elapsed > 0 and (st.bytes + st.reused) / st.elapsed or 0
  res.bytes_fetched, res.bytes_reused, res.bytes_wire = st.bytes, st.reused, wire
  local n = 0
  for _, s in ipairs(st.servers) do if s.bytes > 0 then n = n + 1 end end
  if opt.json then
    emit(opt, out, res)
  elseif not to.memory then
    if not opt.quiet then out:write(res.path, "\n") end
    if talk then
      local reused = st.reused > 0 and (", %s reused"):format(progress.bytes(st.reused)) or ""
      err:write(("%s: %s in %.2f s (%s/s), sha256 %s, from %d server%s%s\n"):format(clean(name),
        progress.bytes(res.size), res.elapsed, progress.bytes(res.rate), res.sha256, n, n == 1 and "" or "s", reused))
    end
  end
  return EXIT.ok
end

--- get NAME..., get -r REMOTE DIR.
function M.get(opt, out, err)
  if opt.recursive then
    if #opt.name ~= 2 then return fail(err, "get -r takes REMOTE DIR (see 'udpxfer get --help')", "usage") end
    return sync_cmd(opt.name[1], opt.name[2], opt, out, err, false)
  end
  if opt.out == "-" and #opt.name > 1 then return fail(err, "-o - takes one NAME", "usage") end
  if opt.out and opt.out ~= "-" and #opt.name > 1 and not opt.create_dirs then
    local d = core.dir(opt.out) -- said once, not per name
    if not d then
      return fail(err, ("-o %s must be a folder to take several files (or add --create-dirs)"):format(opt.out), "usage")
    end
    d:close()
  end
  if opt.out == "-" and opt.json then out = err end -- stdout carries the file
  local rc = EXIT.ok
  for _, name in ipairs(opt.name) do
    local r = get_one(name, opt, out, err, #opt.name > 1)
    if r >= 128 then return r end
    if r ~= EXIT.ok then rc = r end
  end
  return rc
end

return M
