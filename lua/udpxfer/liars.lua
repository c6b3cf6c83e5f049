--- Which servers to leave out when a fetch fails its whole-file SHA-256.
--
-- A chunk's hash travels with the chunk, so a server that hashes wrong bytes
-- (a disk that rotted under its hash cache, a tampered copy) passes every
-- chunk check; only the whole file shows the damage, and not who did it.
-- After such a failure the fetch is tried again without one suspect: the
-- source that gave the most bytes and is not suspected yet. An attempt fed
-- by a single source proves that source wrong; the suspicions so far are
-- then dropped, as they may have hit honest servers. Attempts are bounded.
local M = {}
M.__index = M

--- A tracker allowing `max_attempts` attempts in all (default 8).
function M.new(max_attempts)
  return setmetatable({ proven = {}, suspected = {}, known = {}, attempts = 1, max = max_attempts or 8 }, M)
end

--- The servers ("ip:port") to leave out of the next attempt, sorted.
function M:excluded()
  local out = {}
  for s in pairs(self.proven) do out[#out + 1] = s end
  for s in pairs(self.suspected) do
    if not self.proven[s] then out[#out + 1] = s end
  end
  table.sort(out)
  return out
end

local function allowed(self, server) return not self.suspected[server] and not self.proven[server] end

-- The first server in SOURCES (most bytes first) not left out yet.
local function first_free(self, sources)
  for _, s in ipairs(sources) do
    if allowed(self, s.server) then return s.server end
  end
end

-- Is some server that offered the file in an attempt still allowed?
local function anyone_left(self)
  for s in pairs(self.known) do
    if allowed(self, s) then return true end
  end
  return false
end

--- Record a failed attempt. `servers` is the attempt's per-server stats
-- (`server`, `active`, `bytes`, as `stats().servers` gives them). Returns the
-- server now left out, or nil when no further attempt can help.
function M:failed(servers)
  local sources = {}
  for _, s in ipairs(servers) do
    if s.active or s.bytes > 0 then self.known[s.server] = true end
    if s.bytes > 0 then sources[#sources + 1] = s end
  end
  if self.attempts >= self.max or #sources == 0 then return nil end
  table.sort(sources, function(a, b) return a.bytes > b.bytes end)
  local out
  if #sources == 1 then
    out = sources[1].server
    self.proven[out] = true
    self.suspected = {}
  else
    out = first_free(self, sources)
    if not out then return nil end
    self.suspected[out] = true
  end
  if not anyone_left(self) then return nil end
  self.attempts = self.attempts + 1
  return out
end

return M
