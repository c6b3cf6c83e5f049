-- Parallel servers on an emulated LAN: network namespaces, a bridge,
-- real broadcast discovery (no --server hints), tbf rate limits per server
-- link, nft random drops on the client's ingress. Needs root and `ip netns`;
-- skipped with a message elsewhere. Timings are printed (as TAP comments),
-- not asserted: the speed targets live in bench/parallel.sh.
local H = require "spec.helper"
local json = require "dkjson"

local TAG = "uxt" .. (os.time() % 100000)
local LAN = "bash tools/lan.sh "
local MiB = 1024 * 1024

local function lan(args)
  local code, out, err = H.run(LAN .. args)
  assert(code == 0, LAN .. args .. ": " .. (out or "") .. (err or ""))
end

local function note(fmt, ...) io.stdout:write("# ", fmt:format(...), "\n") end

-- The JSON lines of a command's output, decoded.
local function lines(out)
  local t = {}
  for line in out:gmatch("[^\n]+") do t[#t + 1] = json.decode(line) end
  return t
end

local usable, why = (function()
  local code, out = H.run(LAN .. "check")
  if code ~= 0 then return false, (out or ""):gsub("%s+$", "") end
  if H.run("command -v nft >/dev/null && command -v tc >/dev/null") ~= 0 then
    return false, "needs nft and tc"
  end
  return true
end)()

describe("LAN test bed", function()
  if not usable then
    it("needs root and network namespaces", function()
      pending("skipped: " .. why)
    end)
    return
  end

  local dir, servers = nil, {}

  setup(function()
    dir = H.tmpdir()
    lan("down " .. TAG)
    lan("up " .. TAG .. " 3")
    for i = 1, 3 do os.execute(("mkdir -p %s/s%d"):format(dir, i)) end
    H.write_random(dir .. "/big", 64 * MiB)
    H.write_random(dir .. "/mid", 16 * MiB)
    H.write_random(dir .. "/other", 16 * MiB)
    for i = 1, 3 do
      os.execute(("ln %s/big %s/s%d/big && ln %s/mid %s/s%d/mid"):format(dir, dir, i, dir, dir, i))
    end
  end)

  teardown(function()
    lan("down " .. TAG)
    H.rmrf(dir)
  end)

  after_each(function()
    for _, s in pairs(servers) do
      H.kill(s.pid)
      s.pipe:close()
    end
    servers = {}
    lan("clear " .. TAG .. " 3")
    os.execute("rm -rf " .. dir .. "/out")
  end)

  -- Start `udpxfer serve` on server host i; returns once it is listening.
  local function serve(i, extra, env)
    local pid, pipe = H.spawn(("ip netns exec %s-s%d env %s %s serve %s/s%d --json %s"):format(TAG, i, env or "",
      H.UDPXFER, dir, i, extra or ""))
    local line = pipe:read("l")
    assert(line and line:match('"type":"listening"'), "server " .. i .. " did not start: " .. tostring(line))
    servers[i] = { pid = pid, pipe = pipe }
  end

  local function get(name, extra)
    os.execute("mkdir -p " .. dir .. "/out")
    local t0 = H.core.now()
    local code, out, err = H.run(("ip netns exec %s-c %s get %s --out %s/out --json %s"):format(TAG, H.UDPXFER, name, dir, extra or ""))
    return code, out, err, H.core.now() - t0
  end

  local function same(a, b) return H.core.sha256_file(a) == H.core.sha256_file(b) end

  it("3 servers at 100 Mbit/s each deliver in well under the time of 1 (speed-up printed)", function()
    for i = 1, 3 do lan(("rate %s %d 100"):format(TAG, i)) end
    serve(1)
    local code1, _, err1, t1 = get("big")
    assert.are.equal(0, code1, err1)
    assert.is_true(same(dir .. "/big", dir .. "/out/big"))
    os.remove(dir .. "/out/big")
    serve(2)
    serve(3)
    local code3, out3, err3, t3 = get("big")
    assert.are.equal(0, code3, err3)
    assert.is_true(same(dir .. "/big", dir .. "/out/big"))
    local done = lines(out3)
    assert.are.equal(3, #done[#done].servers, "all three servers delivered")
    note("64 MiB, 100 Mbit/s links: 1 server %.2fs, 3 servers %.2fs: %.3fx the time (target <= 0.37), speed-up %.2fx",
      t1, t3, t3 / t1, t1 / t3)
    -- three links carry three times one: even a loaded machine gets well under one's time
    assert.is_true(t3 < 0.75 * t1, ("3 servers took %.2fs against 1 server's %.2fs"):format(t3, t1))
  end)

  it("3 servers at 40/80/160 Mbit/s: time against size / sum of rates (printed)", function()
    for i, r in ipairs { 40, 80, 160 } do lan(("rate %s %d %d"):format(TAG, i, r)) end
    for i = 1, 3 do serve(i) end
    local code, out, err, t = get("big")
    assert.are.equal(0, code, err)
    assert.is_true(same(dir .. "/big", dir .. "/out/big"))
    local ideal = 64 * MiB * 8 / 280e6
    local chunks = {}
    local done = lines(out)
    for _, s in ipairs(done[#done].servers) do chunks[#chunks + 1] = s.chunks end
    note("64 MiB over 40+80+160 Mbit/s: %.2fs, ideal %.2fs: %.2fx (target <= 1.20); chunks per server %s",
      t, ideal, t / ideal, table.concat(chunks, "/"))
  end)

  it("finishes, correct, when one of 3 servers is killed halfway", function()
    for i = 1, 3 do lan(("rate %s %d 40"):format(TAG, i)) end
    for i = 1, 3 do serve(i) end
    os.execute("mkdir -p " .. dir .. "/out")
    local pid, p = H.spawn(("ip netns exec %s-c %s get big --out %s/out --json"):format(TAG, H.UDPXFER, dir))
    local killed, last = false, nil
    for line in p:lines() do
      last = json.decode(line)
      if not killed and last.type == "progress" and last.bytes >= last.size / 2 then
        H.kill(servers[1].pid)
        killed = true
      end
    end
    p:close()
    assert.is_number(pid)
    assert.is_true(killed, "the transfer was long enough to kill a server halfway")
    assert.are.equal("done", last.type)
    assert.is_true(same(dir .. "/big", dir .. "/out/big"))
  end)

  it("finishes, correct, with one server corrupting 1% of its chunks, and reports it", function()
    for i = 1, 3 do lan(("rate %s %d 100"):format(TAG, i)) end
    for i = 1, 3 do serve(i, "", i == 2 and "UDPXFER_TEST_FAULTS=corrupt=1" or "") end
    local code, out, err = get("big")
    assert.are.equal(0, code, err)
    assert.is_true(same(dir .. "/big", dir .. "/out/big"))
    local events = lines(out)
    local bad
    for _, s in ipairs(events[#events].servers) do
      if s.server == "10.77.0.12:10526" then bad = s.bad end
    end
    assert.is_true(bad >= 8, "bad chunks counted for the corrupting server: " .. tostring(bad))
    local dropped = false
    for _, ev in ipairs(events) do
      dropped = dropped or (ev.type == "drop" and ev.server == "10.77.0.12:10526" and ev.reason == "corrupt")
    end
    assert.is_true(dropped)
  end)

  it("never mixes two servers' different contents under the same name", function()
    os.execute(("rm %s/s3/mid && cp %s/other %s/s3/mid"):format(dir, dir, dir))
    finally(function() os.execute(("rm %s/s3/mid && ln %s/mid %s/s3/mid"):format(dir, dir, dir)) end)
    for i = 1, 3 do serve(i) end
    local code, out, err = get("mid")
    assert.are.equal(0, code, err)
    assert.is_true(same(dir .. "/mid", dir .. "/out/mid"), "the majority's version, whole")
    local start
    for _, ev in ipairs(lines(out)) do if ev.type == "start" then start = ev end end
    assert.are.equal(3, start.offers)
    assert.are.equal(2, start.servers)
    assert.are.equal(2, start.versions)
  end)

  it("finds a server bound to one address (--bind) or one interface (--interface) by real broadcast", function()
    serve(1, "--bind 10.77.0.11")
    serve(2, "--interface eth0")
    serve(3, "--interface lo")
    local code, out, err = get("mid")
    assert.are.equal(0, code, err)
    assert.is_true(same(dir .. "/mid", dir .. "/out/mid"))
    local done = lines(out)
    local heard = {}
    for _, s in ipairs(done[#done].servers) do heard[s.server] = true end
    assert.is_true(heard["10.77.0.11:10526"], "the --bind server answered the broadcast")
    assert.is_true(heard["10.77.0.12:10526"], "the --interface eth0 server answered")
    assert.is_nil(heard["10.77.0.13:10526"], "the --interface lo server heard nothing from eth0")
  end)

  it("speaks the legacy protocol over real broadcast", function()
    for i = 1, 2 do serve(i, "--legacy") end
    local code, _, err = get("mid", "--legacy")
    assert.are.equal(0, code, err)
    assert.is_true(same(dir .. "/mid", dir .. "/out/mid"))
  end)

  it("finishes, correct, under 5% random loss with 3 servers", function()
    lan("loss " .. TAG .. " 5")
    for i = 1, 3 do serve(i) end
    local code, out, err, t = get("mid")
    assert.are.equal(0, code, err)
    assert.is_true(same(dir .. "/mid", dir .. "/out/mid"))
    local lost = 0
    local done = lines(out)
    for _, s in ipairs(done[#done].servers) do lost = lost + s.lost end
    note("16 MiB, 3 servers, 5%% loss: %.2fs, %d chunks recovered", t, lost)
    assert.is_true(lost > 0, "losses happened and were recovered")
  end)
end)

describe("default broadcast addresses", function()
  if not usable then
    it("needs root and network namespaces", function() pending("skipped: " .. why) end)
    return
  end

  it("are each subnet's directed broadcast, computed from the netmask for an address added without brd", function()
    local ns = "uxbrd" .. (os.time() % 100000)
    local later = H.cleanups(finally)
    later(function() os.execute("ip netns del " .. ns .. " 2>/dev/null") end)
    for _, c in ipairs {
      "ip netns add " .. ns, "ip -n " .. ns .. " link add v0 type veth peer name v1",
      "ip -n " .. ns .. " link set v0 up", "ip -n " .. ns .. " link set v1 up",
      "ip -n " .. ns .. " addr add 10.78.0.1/24 dev v0",          -- no brd
      "ip -n " .. ns .. " addr add 10.79.0.1/24 brd + dev v0",    -- brd 10.79.0.255
      "ip -n " .. ns .. " addr add 10.80.0.1/31 dev v0" } do      -- none at all
      assert(os.execute(c), c)
    end
    local dir = H.tmpdir()
    later(function() H.rmrf(dir) end)
    H.write(dir .. "/bcast.lua", 'package.cpath = "lua/?.so;" .. package.cpath; '
      .. 'print(table.concat(require("udpxfer.core").broadcast_addresses(10526), " "))')
    local code, out = H.run(("ip netns exec %s %s %s/bcast.lua"):format(ns, H.LUA, dir))
    assert.are.equal(0, code)
    local got = {}
    for a in out:gmatch("%S+") do got[a] = true end
    assert.are.same({ ["255.255.255.255:10526"] = true, ["10.78.0.255:10526"] = true, ["10.79.0.255:10526"] = true },
      got)
  end)
end)
