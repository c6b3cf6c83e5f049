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
-- `timeout` (s), `chunk_size`, `key`, callbacks `on_done`, `on_error` (an
-- unknown option or a wrong type raises). The result: { type =
-- "done", remote, servers (how many answered), versions, entries = { {path,
-- type ("dir", "file", "link"), mode, mtime (ns), size, sha256, target,
-- servers (how many have it so)}, ... } } with the folder itself first as
-- ".". Returns the pollable listing, or nil, message, code.
local LIST = options.merge(base.ASK, { remote = options.string })

function M.new(opts)
  options.check("udpxfer.list", opts or {}, LIST)
  opts = opts or {}
  local targets, nbcast = base.targets(opts)
  if not targets then return nil, nbcast, "usage" end
  if #targets == 0 then return nil, "no broadcast address or server to ask", "usage" end
  local link, msg, code = core.link()
  if not link then return nil, msg, code end
  local self = setmetatable({ opts = opts, link = link, remote = opts.remote or ".", offers = {}, order = {},
    versions = {}, started = core.now() }, List)
  self.chunk_size = opts.chunk_size or base.chunk_size_for(targets, opts.key)
  local ok, emsg, ecode = self:fetch(nil, targets, nbcast == 0)
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

-- The key entries are merged under: the same path, type and content.
local function key(e) return e.path .. "\0" .. e.type .. "\0" .. (e.sha256 or e.target or "") end

local function merge(self)
  local seen, out = {}, {}
  for _, sha in ipairs(self.order) do
    for _, e in ipairs(self.versions[sha]) do
      local k = key(e)
      local have = seen[k]
      if not have then
        have = e
        have.servers = 0
        seen[k] = have
        out[#out + 1] = have
      end
      have.servers = have.servers + #self.offers[sha]
    end
  end
  local function order(e) return e.path == "." and "" or e.path:gsub("/", "\0") end
  table.sort(out, function(a, b) return order(a) < order(b) end)
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
  self.outcome = { type = "done", remote = self.remote, servers = n, versions = #self.order, entries = merge(self),
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
      local entries, msg, code = core.listing_decode(ev.data)
      self.obj:close()
      self.obj = nil
      if not entries then
        self.outcome = { type = "error", message = msg, code = code }
        call(self.opts.on_error, self.outcome)
        return true
      end
      self.versions[ev.sha256] = entries
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
