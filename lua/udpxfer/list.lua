--- Listing what the servers on the LAN offer under a folder: every
-- version of its listing that some server offers is fetched (each from the
-- servers offering it), checked, and merged, so each entry says how many
-- servers have it as shown.
local base = require "udpxfer.base"
local options = require "udpxfer.options"

local core, call = base.core, base.call

local M = {}

local List = base.class(base.Pollable)

--- Start listing. Options: `remote` (default "."; "" lists the trees: "."
-- and the shares), `port`, `servers`, `broadcast` (as for `get`),
-- `timeout` (s), `chunk_size`, `key`, `max_entries` (default 1,000,000: a
-- listing with more, or versions that merge to more, fail with code
-- "unsafe"), callbacks `on_done`, `on_error` (an unknown option or a wrong
-- type raises). The result: { type =
-- "done", remote, servers (how many answered), versions, entries = { {path,
-- type ("dir", "file", "link"), mode, mtime (ns), size, sha256, target,
-- servers (how many have it so)}, ... } } with the folder itself first as
-- ".". Each version is merged in as it arrives, and not kept. Returns the
-- pollable listing, or nil, message, code.
local LIST = options.merge(base.ASK, { remote = options.string, max_entries = options.integer(1, 4294967294) })

function M.new(opts)
  options.check("udpxfer.list", opts or {}, LIST)
  opts = opts or {}
  local targets, err, unicast = base.targets(opts)
  if not targets then return nil, err, "usage" end
  if #targets == 0 then return nil, "no broadcast address or server to ask", "usage" end
  local link, msg, code = core.link()
  if not link then return nil, msg, code end
  local self = setmetatable({ opts = opts, link = link, remote = opts.remote or ".", offers = {}, order = {},
    versions = {}, entries = {}, started = core.now() }, List)
  self.chunk_size = opts.chunk_size or base.chunk_size_for(targets, opts.key)
  local ok, emsg, ecode = self:fetch(nil, targets, unicast)
  if not ok then
    link:close()
    return nil, emsg, ecode
  end
  return self
end

function List:fetch(sha256, targets, unicast)
  local obj, msg, code = core.client {
    kind = "listing", name = self.remote, link = self.link, targets = targets, unicast = unicast, sha256 = sha256,
    chunk_size = self.chunk_size, discover_timeout = self.opts.timeout, key = self.opts.key,
  }
  if not obj then return nil, msg, code end
  self.obj = obj
  return true
end

function List:pollfd() return self.link:pollfd() end
function List:events() return "r" end
function List:timeout() return self.obj and self.obj:timeout() or 0 end
function List:stats() return self.obj and self.obj:stats() or { state = "done" } end

-- The entries merged are the same path, type and content.
local function same(a, b) return a.type == b.type and a.sha256 == b.sha256 and a.target == b.target end

-- Merge in version SHA's entries (the listing L): those already in count
-- its servers too, the others join. Returns true, or nil, message.
local function merge(self, sha, l)
  local out, n = self.entries, #self.offers[sha]
  if #out == 0 then -- the first version: in order, no lookups
    for i = 1, #l do
      local e = l:get(i)
      e.servers = n
      out[i] = e
    end
    return true
  end
  if not self.by_path then -- a second version: look entries up by path from now on
    self.by_path = {}
    for _, e in ipairs(out) do
      local same_path = self.by_path[e.path]
      if same_path then same_path[#same_path + 1] = e else self.by_path[e.path] = { e } end
    end
  end
  local max = self.opts.max_entries or 1000000
  for i = 1, #l do
    local v, have = l[i], nil
    local same_path = self.by_path[v.path]
    for _, e in ipairs(same_path or {}) do if same(e, v) then have = e end end
    if not have then
      if #out >= max then return nil, ("the versions offered merge to more than %d entries (max_entries)"):format(max) end
      have = l:get(i)
      have.servers = 0
      out[#out + 1] = have
      if same_path then same_path[#same_path + 1] = have else self.by_path[have.path] = { have } end
      self.unsorted = true
    end
    have.servers = have.servers + n
  end
  return true
end

-- The merged entries in listing order ('/' before every other byte).
local function ordered(self)
  local out = self.entries
  if self.unsorted then
    local key = {}
    for _, e in ipairs(out) do key[e] = e.path == "." and "" or e.path:gsub("/", "\0") end
    table.sort(out, function(a, b) return key[a] < key[b] end)
  end
  return out
end

-- The next version to fetch, or the end.
local function next_version(self)
  for _, sha in ipairs(self.order) do
    if not self.versions[sha] then
      local ok, msg, code = self:fetch(sha, self.offers[sha], true)
      if not ok then self.outcome = { type = "error", message = msg, code = code } end
      return
    end
  end
  local n = 0
  for _, list in pairs(self.offers) do n = n + #list end
  self.by_path = nil
  self.outcome = { type = "done", remote = self.remote, servers = n, versions = #self.order, entries = ordered(self),
    elapsed = core.now() - self.started, bytes_wire = self.link:stats().rx_bytes }
  call(self.opts.on_done, self.outcome)
end

function List:step()
  if self.outcome then return true end
  self.link:step()
  for _, ev in ipairs(self.obj:drain()) do
    if ev.type == "offer" then
      if not self.offers[ev.sha256] then
        self.offers[ev.sha256] = {}
        self.order[#self.order + 1] = ev.sha256
      end
      local list = self.offers[ev.sha256]
      local known = false
      for _, s in ipairs(list) do known = known or s == ev.server end
      if not known then list[#list + 1] = ev.server end
    elseif ev.type == "done" then
      local entries, msg, code = core.listing_decode(ev.data, self.opts.max_entries)
      self.obj:close()
      self.obj = nil
      local ok = entries ~= nil
      if ok then ok, msg, code = merge(self, ev.sha256, entries) end
      if not ok then
        self.outcome = { type = "error", message = msg, code = code or "unsafe" }
        call(self.opts.on_error, self.outcome)
        return true
      end
      self.versions[ev.sha256] = true -- merged: the version itself is not kept
      next_version(self)
      return self.outcome ~= nil
    elseif ev.type == "error" then
      self.outcome = ev
      call(self.opts.on_error, ev)
    end
  end
  return self.outcome ~= nil
end

function List:close()
  if self.closed then return end
  base.forget(self.link:pollfd())
  self.closed = true
  if self.obj then self.obj:close() end
  self.link:close()
  if not self.outcome then self.outcome = { type = "error", message = "closed", code = "closed" } end
end

return M
