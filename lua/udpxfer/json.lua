--- Minimal JSON encoder for udpxfer's --json output (tables, strings,
-- numbers, booleans; arrays are tables with a [1]).
local M = {}

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
  ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function str(s)
  return '"' .. s:gsub('[%c"\\]', function(c)
    return escapes[c] or ("\\u%04x"):format(c:byte())
  end) .. '"'
end

local encode

local function array(t)
  local out = {}
  for i = 1, #t do out[i] = encode(t[i]) end
  return "[" .. table.concat(out, ",") .. "]"
end

local function object(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local out = {}
  for i, k in ipairs(keys) do out[i] = str(k) .. ":" .. encode(t[k]) end
  return "{" .. table.concat(out, ",") .. "}"
end

--- Encode a Lua value as a JSON text.
function encode(v)
  local t = type(v)
  if t == "string" then return str(v) end
  if t == "number" then
    if v ~= v or v == math.huge or v == -math.huge then return "null" end
    return math.type(v) == "integer" and tostring(v) or ("%.6g"):format(v)
  end
  if t == "boolean" then return tostring(v) end
  if t == "table" then return (next(v) == nil or v[1] ~= nil) and array(v) or object(v) end
  return "null"
end

M.encode = encode
return M
