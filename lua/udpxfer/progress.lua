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

-- LEFT, a bar, then FIELDS ({text, rank}: rank 1 matters most), in fewer
-- than WIDTH columns: the bar shrinks (or goes) first, then LEFT is cut
-- from its start (keeping the end of a long name, and at least a few
-- bytes of it), then fields go whole, least important first, never cut
-- mid-number.
local function fit(left, frac, fields, width)
  width = width or 80
  local cut = #fields + 1 -- fields ranked at or above this are left out
  local function right()
    local t = {}
    for _, f in ipairs(fields) do if f[2] < cut then t[#t + 1] = f[1] end end
    return table.concat(t, "  ")
  end
  while cut > 2 and #right() > width - 2 - math.min(#left, 10) do cut = cut - 1 end
  local r = right()
  local bar_w = math.min(24, width - 1 - #left - #r - 4)
  local bar = ""
  if bar_w >= 5 then
    local fill = math.floor(frac * bar_w + 0.5)
    bar = " [" .. ("#"):rep(fill) .. (" "):rep(bar_w - fill) .. "]"
  end
  local room = width - 2 - #bar - #r
  if #left > room then left = room > 2 and ".." .. left:sub(#left - room + 3) or "" end
  return (left .. bar .. " " .. r):sub(1, width - 1)
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
  return fit(name, frac, { { ("%3d%%"):format(math.floor(frac * 100)), 1 },
    { M.bytes(done) .. " / " .. M.bytes(st.size), 4 }, { M.bytes(rate) .. "/s", 3 },
    { "ETA " .. M.duration(eta), 2 }, { ("%d server%s"):format(live, live == 1 and "" or "s"), 5 } }, width)
end

--- One progress line for a sync's stats.
function M.sync_line(remote, st, width)
  local total = math.max(st.bytes_total, 1)
  local frac = st.bytes_total > 0 and math.min(st.bytes_done / total, 1) or (st.files_todo > 0 and st.files_done / st.files_todo or 1)
  local rate = st.elapsed > 0 and st.bytes_done / st.elapsed or 0
  local eta = rate > 0 and (st.bytes_total - st.bytes_done) / rate or math.huge
  return fit(remote, frac, { { ("%d/%d files"):format(st.files_done, st.files_todo), 1 },
    { M.bytes(st.bytes_done) .. " / " .. M.bytes(st.bytes_total), 4 }, { M.bytes(rate) .. "/s", 3 },
    { "ETA " .. M.duration(eta), 2 } }, width)
end

return M
