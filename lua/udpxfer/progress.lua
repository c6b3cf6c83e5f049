--- Human-readable sizes, rates and one-line progress that fits a terminal.
local M = {}

local units = { "B", "KiB", "MiB", "GiB", "TiB" }

--- 1536 -> "1.5 KiB"
function M.bytes(n)
  local i = 1
  while n >= 1024 and i < #units do n, i = n / 1024, i + 1 end
  return i == 1 and ("%d B"):format(math.floor(n)) or ("%.1f %s"):format(n, units[i])
end

--- Seconds as "m:ss" (or "h:mm:ss").
function M.duration(s)
  if s ~= s or s == math.huge or s < 0 then return "--:--" end
  s = math.floor(s + 0.5)
  local h, m = s // 3600, (s % 3600) // 60
  if h > 0 then return ("%d:%02d:%02d"):format(h, m, s % 60) end
  return ("%d:%02d"):format(m, s % 60)
end

-- LEFT, a bar, then RIGHT, in fewer than WIDTH columns: the bar shrinks
-- (or goes) first, then LEFT is cut from its start, keeping the end of a
-- long name.
local function fit(left, frac, right, width)
  width = width or 80
  local bar_w = math.min(24, width - 1 - #left - #right - 4)
  local bar = ""
  if bar_w >= 5 then
    local fill = math.floor(frac * bar_w + 0.5)
    bar = " [" .. ("#"):rep(fill) .. (" "):rep(bar_w - fill) .. "]"
  end
  local room = width - 2 - #bar - #right
  if #left > room then left = room > 2 and ".." .. left:sub(#left - room + 3) or "" end
  return (left .. bar .. " " .. right):sub(1, width - 1)
end

--- One progress line for a fetch's stats, at most WIDTH - 1 columns (so it
-- never wraps).
function M.line(name, st, width)
  local done = st.bytes + (st.reused or 0) -- fetched, or taken from a local copy
  local frac = st.size > 0 and math.min(done / st.size, 1) or 1
  local rate = st.elapsed > 0 and st.bytes / st.elapsed or 0
  local eta = rate > 0 and math.max(st.size - done, 0) / rate or math.huge
  local live = 0
  for _, s in ipairs(st.servers or {}) do if s.active then live = live + 1 end end
  local right = ("%3d%% %s / %s  %s/s  ETA %s  %d server%s"):format(math.floor(frac * 100),
    M.bytes(done), M.bytes(st.size), M.bytes(rate), M.duration(eta), live, live == 1 and "" or "s")
  return fit(name, frac, right, width)
end

--- One progress line for a sync's stats.
function M.sync_line(remote, st, width)
  local total = math.max(st.bytes_total, 1)
  local frac = st.bytes_total > 0 and math.min(st.bytes_done / total, 1) or (st.files_todo > 0 and st.files_done / st.files_todo or 1)
  local rate = st.elapsed > 0 and st.bytes_done / st.elapsed or 0
  local eta = rate > 0 and (st.bytes_total - st.bytes_done) / rate or math.huge
  local right = ("%d/%d files  %s / %s  %s/s  ETA %s"):format(st.files_done, st.files_todo,
    M.bytes(st.bytes_done), M.bytes(st.bytes_total), M.bytes(rate), M.duration(eta))
  return fit(remote, frac, right, width)
end

return M
