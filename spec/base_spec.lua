-- udpxfer.base: where requests go.
require "spec.helper"
local base = require "udpxfer.base"

describe("udpxfer.base.targets", function()
  it("asks named servers alone when no broadcast is given, taking answers from any address", function()
    local t, _, unicast = base.targets { servers = { "127.0.0.1:21999" } }
    assert.same({ "127.0.0.1:21999" }, t)
    assert.is_false(unicast) -- a server may answer from another of its addresses
  end)

  it("takes answers only from the servers asked when broadcast is off by name", function()
    for _, off in ipairs { false, {} } do
      local t, _, unicast = base.targets { servers = { "127.0.0.1:21999" }, broadcast = off }
      assert.same({ "127.0.0.1:21999" }, t)
      assert.is_true(unicast)
    end
  end)

  it("adds the given broadcast addresses before the named servers", function()
    local t, _, unicast = base.targets { servers = { "127.0.0.1:21999" }, broadcast = { "127.255.255.255" }, port = 21998 }
    assert.same({ "127.255.255.255:21998", "127.0.0.1:21999" }, t)
    assert.is_false(unicast)
  end)

  it("broadcasts on every interface only when neither is given", function()
    local t = base.targets { port = 21998 }
    assert.same(base.core.broadcast_addresses(21998), t)
  end)

  it("asks nobody with broadcast off and no server", function()
    local t = base.targets { broadcast = false }
    assert.same({}, t)
  end)
end)
