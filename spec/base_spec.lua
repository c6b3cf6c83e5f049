-- udpxfer.base: where requests go.
require "spec.helper"
local base = require "udpxfer.base"

describe("udpxfer.base.targets", function()
  it("asks named servers alone when no broadcast is given", function()
    local t, nbcast = base.targets { servers = { "127.0.0.1:21999" } }
    assert.same({ "127.0.0.1:21999" }, t)
    assert.equal(0, nbcast)
  end)

  it("adds the given broadcast addresses before the named servers", function()
    local t, nbcast = base.targets { servers = { "127.0.0.1:21999" }, broadcast = { "127.255.255.255" }, port = 21998 }
    assert.same({ "127.255.255.255:21998", "127.0.0.1:21999" }, t)
    assert.equal(1, nbcast)
  end)

  it("broadcasts on every interface only when neither is given", function()
    local t, nbcast = base.targets { port = 21998 }
    local want = base.core.broadcast_addresses(21998)
    assert.equal(#want, nbcast)
    assert.equal(#want, #t)
  end)

  it("asks nobody with broadcast off and no server", function()
    local t, nbcast = base.targets { broadcast = false }
    assert.same({}, t)
    assert.equal(0, nbcast)
  end)
end)
