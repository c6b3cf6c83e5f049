--- Checking the options a constructor is given, as argparse checks a
-- command line: an unknown name or a value of the wrong kind is a
-- programmer's mistake and raises, naming the option.
local M = {}

local function finite(v) return v == v and v > -math.huge and v < math.huge end

local function kind(what, ok) return { what = what, ok = ok } end

M.string = kind("a string", function(v) return type(v) == "string" end)
M.boolean = kind("a boolean", function(v) return type(v) == "boolean" end)
M.callback = kind("a function", function(v) return type(v) == "function" end)
M.userdata = kind("a udpxfer object", function(v) return type(v) == "userdata" end)
M.any = kind("anything", function() return true end)

--- A number of seconds above 0 (finite).
M.seconds = kind("a number of seconds above 0",
  function(v) return type(v) == "number" and finite(v) and v > 0 end)
--- A number of seconds, 0 or more (finite).
M.interval = kind("a number of seconds, 0 or more",
  function(v) return type(v) == "number" and finite(v) and v >= 0 end)

--- An integer from LO to HI (a float with an integer value too).
function M.integer(lo, hi)
  return kind(("an integer from %d to %d"):format(lo, hi), function(v)
    local n = type(v) == "number" and math.tointeger(v)
    return n and n >= lo and n <= hi or false
  end)
end

--- A number from LO to HI (finite).
function M.number(lo, hi)
  return kind(("a number from %s to %s"):format(lo, hi),
    function(v) return type(v) == "number" and finite(v) and v >= lo and v <= hi end)
end

--- Bytes per second: a number from 1 to 2^50.
M.rate = M.number(1, 1 << 50)
--- A byte count, a descriptor.
M.bytes = M.integer(0, 1 << 62)
M.fd = M.integer(0, 1 << 30)

--- A list of strings (a table with only 1..n).
M.strings = kind("a list of strings, e.g. { \"10.0.0.7\" }", function(v)
  if type(v) ~= "table" then return false end
  local n = 0
  for k, s in pairs(v) do
    if math.type(k) ~= "integer" or type(s) ~= "string" then return false end
    n = n + 1
  end
  return n == #v
end)

--- A table of string keys to string values.
M.names = kind("a table of NAME = PATH strings", function(v)
  if type(v) ~= "table" then return false end
  for k, s in pairs(v) do
    if type(k) ~= "string" or type(s) ~= "string" then return false end
  end
  return true
end)

--- 64 hex digits.
M.sha256 = kind("64 hex digits", function(v) return type(v) == "string" and #v == 64 and not v:find("%X") end)

--- Either of two kinds.
function M.either(a, b)
  return kind(a.what .. " or " .. b.what, function(v) return a.ok(v) or b.ok(v) end)
end

--- The value false.
M.no = kind("false", function(v) return v == false end)

local function show(v)
  if type(v) == "string" then return ("the string %q"):format(#v > 40 and v:sub(1, 40) .. "..." or v) end
  if type(v) == "number" then return ("%s %s"):format(math.type(v) == "integer" and "the integer" or "the number", v) end
  return type(v)
end

--- Check OPTS against SCHEMA ({ name = kind, ... }) for the function
-- called WHO; a name in REQUIRED must be there. Raises at the caller of
-- the constructor. Returns OPTS.
function M.check(who, opts, schema, required)
  if type(opts) ~= "table" then error(("%s expects a table of options, not %s"):format(who, show(opts)), 3) end
  for _, name in ipairs(required or {}) do
    if opts[name] == nil then error(("%s: %s is required"):format(who, name), 3) end
  end
  for name, v in pairs(opts) do
    local k = schema[name]
    if not k then
      error(("%s: unknown option %s"):format(who, type(name) == "string" and ("%q"):format(name) or show(name)), 3)
    end
    if not k.ok(v) then error(("%s: option %s must be %s, not %s"):format(who, name, k.what, show(v)), 3) end
  end
  return opts
end

--- SCHEMA with the entries of each table after it added.
function M.merge(schema, ...)
  local out = {}
  for _, t in ipairs { schema, ... } do
    for k, v in pairs(t) do out[k] = v end
  end
  return out
end

return M
