-- `luarocks make --local` from a copy of the checkout, and `luarocks install`
-- of the source rock `make rock` packs, build and install the module and
-- the CLI with no network. LuaRocks refuses --local to root, so as root the
-- first build runs as the unprivileged user `nobody`.
local H = require "spec.helper"

describe("rockspec", function()
  -- A rockspec's fields, loaded as the Lua it is.
  local function load_spec(path)
    local env = {}
    assert(loadfile(path, "t", env))()
    return env
  end

  it("the release rockspec matches the scm one but for version and source, and names the CLI's version", function()
    local scm = load_spec("udpxfer-scm-1.rockspec")
    local ver = require("udpxfer.cli").VERSION
    local rel = load_spec(("udpxfer-%s-1.rockspec"):format(ver))
    assert.are.equal(ver .. "-1", rel.version)
    assert.are.equal("udpxfer-" .. ver, rel.source.dir)
    scm.version, scm.source, rel.version, rel.source = nil, nil, nil, nil
    assert.are.same(scm, rel)
  end)

  it("declares the Lua modules the CLI requires", function()
    local deps = table.concat(load_spec("udpxfer-scm-1.rockspec").dependencies, " ")
    assert.matches("argparse", deps)
    assert.matches("dkjson", deps)
  end)

  it("installs module and CLI with luarocks make --local, and the CLI works", function()
    local later = H.cleanups(finally)
    local dir = H.tmpdir()
    later(function() H.rmrf(dir) end)
    local src, home = dir .. "/src", dir .. "/home"
    os.execute(("mkdir -p %s %s && cp -r Makefile csrc lua bin examples .luarocks lua_modules udpxfer-scm-1.rockspec %s/ && rm -rf %s/lua/udpxfer/core.so %s/build")
      :format(src, home, src, src, src))
    local as = ""
    if H.is_root() then
      os.execute("chown -R nobody " .. H.shell_quote(dir) .. " && chmod 755 " .. H.shell_quote(dir))
      as = "runuser -u nobody -- "
    end
    local code, out, err = H.run(("cd %s && %senv HOME=%s luarocks make --local udpxfer-scm-1.rockspec")
      :format(H.shell_quote(src), as, H.shell_quote(home)))
    assert.are.equal(0, code, (out or "") .. (err or ""))
    local bin = home .. "/.luarocks/bin/udpxfer"
    local vcode, vout = H.run(("cd / && %s --version"):format(bin))
    assert.are.equal(0, vcode)
    assert.matches("^udpxfer %d+%.%d+", vout)

    -- the installed CLI fetches from a server process over loopback
    os.execute(("mkdir -p %s/srv %s/out && chmod 777 %s/out"):format(dir, dir, dir))
    H.write(dir .. "/srv/r.txt", "from the rock")
    local pid, port, pipe = H.start_server(dir .. "/srv")
    later(function() H.kill(pid) pipe:close() end)
    local rc = H.run(("%s get r.txt --port %d --server 127.0.0.1 --broadcast none --out %s -q")
      :format(bin, port, dir .. "/out"))
    assert.are.equal(0, rc)
    assert.are.equal("from the rock", H.read(dir .. "/out/r.txt"))
  end)

  it("packs a source rock (make rock) that luarocks installs into a tree offline; its CLI and module work", function()
    local dir = H.tmpdir()
    finally(function() H.rmrf(dir) end)
    local code, out, err = H.run("sh tools/rock.sh")
    assert.are.equal(0, code, err)
    local rock = out:match("(build/udpxfer%-[%d.]+%-1%.src%.rock)")
    assert.is_truthy(rock, out)
    local tree = dir .. "/tree"
    -- as the README says: from anywhere, the Lua dependencies Debian's packages
    code, out, err = H.run(("cd / && luarocks --lua-version 5.4 --tree %s install --deps-mode=none %s")
      :format(H.shell_quote(tree), H.shell_quote(H.sh("pwd"):gsub("%s+$", "") .. "/" .. rock)))
    assert.are.equal(0, code, (out or "") .. (err or ""))
    local shown = H.sh(("luarocks --lua-version 5.4 --tree %s show --rock-dir udpxfer"):format(H.shell_quote(tree)))
    assert.truthy(H.read(shown:gsub("%s+$", "") .. "/examples/get.lua"), "examples not installed in " .. shown)
    local env = ('cd / && eval "$(luarocks --lua-version 5.4 --tree %s path --bin)" && '):format(H.shell_quote(tree))
    local vcode, vout = H.run(env .. "udpxfer --version")
    assert.are.equal(0, vcode)
    assert.matches("^udpxfer %d+%.%d+", vout)
    local mcode, mout = H.run(env .. [[lua5.4 -e 'print(package.searchpath("udpxfer.core", package.cpath))']])
    assert.are.equal(0, mcode)
    assert.are.equal(tree .. "/lib/lua/5.4/udpxfer/core.so\n", mout)
  end)
end)
