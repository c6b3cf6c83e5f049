--- How a sync fetches its files. New files (no local copy to compare
-- with) go as batches: files of the listing asked for as one transfer
-- (udpxfer.core.batch: one request, one session per server, the chunks of
-- many files in one flow, each file checked whole against the listing's
-- SHA-256 and put in place as soon as it is complete). A file with a
-- local copy (changed, or a partial file to resume) is fetched on its own,
-- comparing chunk-hash trees to move only the chunks that differ; so is a
-- file of a batch that failed its check (every chunk then checked against
-- its leaf) or that a stale or silent server left unfinished.
local base = require "udpxfer.base"

local core = base.core

local M = {}

local SMALL = 1 << 20     -- files up to this size go many at a time
local IN_FLIGHT = 64      -- single fetches at once
local LARGE_IN_FLIGHT = 2 -- of them, larger files
local BATCH_RANGES = 120  -- the ranges of file numbers one batch request holds
local BATCH_FILES = 50000 -- files one batch takes
local BATCHES_IN_FLIGHT = 4 -- batches under way at once: a server keeps 16 for all its clients

--- The fetching state a sync starts with.
function M.state()
  return { active = {}, batches = {}, queue_small = { at = 1, n = 0 }, queue_large = { at = 1, n = 0 }, large = 0,
    batch_queue = { at = 1, n = 0 } }
end

-- Files waiting for a fetch of their own, in two queues read from a
-- cursor (a sync may queue thousands: no shifting).
local function queue(self, f, front)
  local q = f.e.size > SMALL and self.fetch.queue_large or self.fetch.queue_small
  if front then
    q.at = q.at - 1
    q[q.at] = f
  else
    q.n = q.n + 1
    q[q.n] = f
  end
end
M.queue = queue

--- Files waiting for a fetch of their own, and batches waiting to start.
function M.queued(self)
  local s, l, b = self.fetch.queue_small, self.fetch.queue_large, self.fetch.batch_queue
  return s.n - s.at + 1 + l.n - l.at + 1 + b.n - b.at + 1
end

--- Fetches under way: single ones and batches.
function M.active(self) return #self.fetch.active + #self.fetch.batches end

--- Is there room to start a single fetch?
function M.room(self) return #self.fetch.active < IN_FLIGHT end

--- Could step() start something queued now?
function M.startable(self)
  local st = self.fetch
  local s, l, b = st.queue_small, st.queue_large, st.batch_queue
  return (M.room(self) and (s.at <= s.n or (l.at <= l.n and st.large < LARGE_IN_FLIGHT)))
    or (b.at <= b.n and #st.batches < BATCHES_IN_FLIGHT)
end

local function remote_name(self, path)
  local r = self.opts.remote
  return (r == "." or r == "") and path or r .. "/" .. path
end

-- ---- single fetches ----

-- A step that is only its entry (a listing's, read-only) as a table of
-- its own, which a fetch's state goes into.
local function own(f) return f.e == f and { e = f } or f end

local function start_fetch(self, f)
  f = own(f)
  local e = f.e
  local obj, msg, code = core.client {
    name = remote_name(self, f.e.path), sha256 = e.sha256, root = self.dir, path = e.path, basis = f.basis,
    resume = self.partials[e.path] ~= nil, -- a fetch looks for partial files only where the scan saw one
    mode = e.mode, mtime = e.mtime,
    durable = false, link = self.link, targets = self.servers, unicast = true, verify = f.verify,
    chunk_size = self.chunk_size, discover_timeout = 5, idle_timeout = 5,
    key = self.opts.key,
  }
  if not obj then return self:error_entry(e.path, msg, code) end
  f.obj = obj
  if e.size > SMALL then self.fetch.large = self.fetch.large + 1 end
  self.fetch.active[#self.fetch.active + 1] = f
end

--- Start what may start: large files up to LARGE_IN_FLIGHT, small ones up
-- to IN_FLIGHT in all.
function M.start_more(self)
  local st = self.fetch
  local large, small = st.queue_large, st.queue_small
  while M.room(self) and large.at <= large.n and st.large < LARGE_IN_FLIGHT do
    local f = large[large.at]
    large[large.at], large.at = nil, large.at + 1
    start_fetch(self, f)
  end
  while M.room(self) and small.at <= small.n do
    local f = small[small.at]
    small[small.at], small.at = nil, small.at + 1
    start_fetch(self, f)
  end
end

local function finish_fetch(self, f, k)
  table.remove(self.fetch.active, k)
  if f.e.size > SMALL then self.fetch.large = self.fetch.large - 1 end
  local st = f.obj:stats()
  self.totals.bytes_fetched = self.totals.bytes_fetched + st.bytes
  self.totals.bytes_reused = self.totals.bytes_reused + st.reused
  self.totals.bytes_done = self.totals.bytes_done + f.e.size
  f.obj:close()
  f.obj = nil -- the plan keeps F to the end: a closed fetch must not stay with it
  return st
end

-- Once more, every chunk checked against the tree (base.retry_verified).
local function retry(self, f)
  f.verify = true
  queue(self, f, true)
  return true
end

-- A fetch told its file changed on the server (as a restarted server says
-- of every transfer it did not start), or left by servers gone silent:
-- once more, resuming from its partial file, against whichever servers
-- answer now.
local function retry_stale(self, f)
  if f.stale_retried then return false end
  f.stale_retried = true
  self.partials[f.e.path] = true
  queue(self, f, true)
  return true
end

-- What a failed fetch of F comes to: tried again, or an error entry.
local function failed(self, f, code, message)
  if code == "notfound" or code == "version" then
    -- the servers no longer have what their listing named: the tree changed meanwhile
    self:error_entry(f.e.path, "changed on the server since the listing (sync again)", "stale")
  elseif not ((base.retry_verified({ code = code }, f.verify) and retry(self, f)) or
      ((code == "stale" or code == "timeout") and retry_stale(self, f))) then
    self:error_entry(f.e.path, message, code)
  end
end

local function step_fetch(self, f, k)
  for _, ev in ipairs(f.obj:drain()) do
    if ev.type == "done" then
      local st = finish_fetch(self, f, k)
      self:file_done(f.e, "fetch", { size = f.e.size, bytes = st.bytes, reused = st.reused }, ev.stat)
      return true
    elseif ev.type == "error" then
      finish_fetch(self, f, k)
      self.totals.bytes_done = self.totals.bytes_done - f.e.size
      failed(self, f, ev.code, ev.message)
      return true
    end
  end
  return false
end

-- ---- batches ----

-- Start a batch of FILES ({ {e=}, ... }, e.number going up).
local function start_batch(self, files)
  local list = {}
  for i, f in ipairs(files) do list[i] = f.e end -- a listing entry has what a batch file needs, its number too
  local obj, msg, code = core.batch {
    remote = self.opts.remote, listing = self.listing_sha256, root = self.dir, files = list, link = self.link,
    targets = self.servers, chunk_size = self.chunk_size, discover_timeout = 5, idle_timeout = 5,
    key = self.opts.key,
  }
  if not obj then
    for _, f in ipairs(files) do queue(self, f) end -- each on its own, then
    return msg, code
  end
  self.fetch.batches[#self.fetch.batches + 1] = { obj = obj, files = files, settled = 0 }
end

-- Start queued batches while fewer than BATCHES_IN_FLIGHT are under way.
local function start_batches(self)
  local q = self.fetch.batch_queue
  while #self.fetch.batches < BATCHES_IN_FLIGHT and q.at <= q.n do
    local files = q[q.at]
    q[q.at], q.at = nil, q.at + 1
    start_batch(self, files)
  end
end

local function queue_batch(self, files)
  local q = self.fetch.batch_queue
  q.n = q.n + 1
  q[q.n] = files
end

--- Fetch FILES (new files, no local copy) as batches: one for every
-- BATCH_RANGES ranges of file numbers or BATCH_FILES files.
function M.batch(self, files)
  local num = {} -- each file's number, read once from its entry
  for i, f in ipairs(files) do num[i] = f.e.number end
  for i = 2, #files do -- in listing order already, but for files a failed copy sent here
    if num[i] < num[i - 1] then
      table.sort(files, function(a, b) return a.e.number < b.e.number end)
      for k, f in ipairs(files) do num[k] = f.e.number end
      break
    end
  end
  local cur, ranges = {}, 0
  for i, f in ipairs(files) do
    local gap = #cur == 0 or num[i - 1] + 1 ~= num[i]
    if (gap and ranges == BATCH_RANGES) or #cur == BATCH_FILES then
      queue_batch(self, cur)
      cur, ranges = {}, 0
      gap = true
    end
    if gap then ranges = ranges + 1 end
    cur[#cur + 1] = f
  end
  if #cur > 0 then queue_batch(self, cur) end
  start_batches(self)
end

-- What a batch may fail with that a fetch of each file on its own may not:
-- a server that does not serve batches, or none that answered for it.
local AGAIN_ALONE = { notfound = true, refused = true, version = true, noserver = true }

-- A batch's events: each file in place or failed, then its end.
local function step_batch(self, b, k)
  for _, ev in ipairs(b.obj:drain()) do
    if ev.type == "file" then
      local f = b.files[ev.index]
      local size = f.e.size
      b.settled = b.settled + size
      if ev.ok then
        self.totals.bytes_done = self.totals.bytes_done + size
        self:file_done(f.e, "fetch", { size = size, bytes = size, reused = 0 }, ev.stat)
      elseif AGAIN_ALONE[ev.code] then
        queue(self, f) -- no server served the batch: each file on its own
      else
        failed(self, own(f), ev.code, ev.message)
      end
    elseif ev.type == "done" or ev.type == "error" then
      local st = b.obj:stats()
      self.totals.bytes_fetched = self.totals.bytes_fetched + st.bytes
      b.obj:close()
      table.remove(self.fetch.batches, k)
      return true
    elseif ev.type == "preparing" then
      base.call(self.opts.on_preparing, ev)
    end
  end
  return false
end

--- Step every fetch under way, start what may start. Returns true once
-- nothing is under way or waiting.
function M.step(self)
  M.start_more(self)
  local st = self.fetch
  local k = 1
  while k <= #st.active do
    if not step_fetch(self, st.active[k], k) then k = k + 1 end
  end
  k = 1
  while k <= #st.batches do
    if not step_batch(self, st.batches[k], k) then k = k + 1 end
  end
  M.start_more(self)
  start_batches(self)
  return M.active(self) == 0 and M.queued(self) == 0
end

--- The bytes the fetches under way have moved so far (fetched or reused).
function M.moving(self)
  local n = 0
  for _, f in ipairs(self.fetch.active) do
    local st = f.obj:stats()
    n = n + st.bytes + st.reused
  end
  for _, b in ipairs(self.fetch.batches) do -- what came of the files not settled yet
    n = n + math.max(0, b.obj:stats().bytes - b.settled)
  end
  return n
end

--- Stop every fetch under way; KEEP: their partial files stay (abort).
function M.stop(self, keep)
  for _, f in ipairs(self.fetch.active) do
    if keep then f.obj:abort("interrupted", true) else f.obj:close() end
  end
  for _, b in ipairs(self.fetch.batches) do
    if keep then b.obj:abort("interrupted") end
    b.obj:close()
  end
  self.fetch.active, self.fetch.batches = {}, {}
end

return M
