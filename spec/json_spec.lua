require "spec.helper"
local json = require "udpxfer.json"

describe("json.encode", function()
  it("encodes scalars, arrays and objects with sorted keys", function()
    assert.are.equal('{"a":1,"b":[true,"x"],"c":0.5}', json.encode { b = { true, "x" }, a = 1, c = 0.5 })
    assert.are.equal("[]", json.encode {})
  end)
  it("escapes control characters and quotes", function()
    assert.are.equal('"a\\"b\\\\c\\n\\u0001"', json.encode('a"b\\c\n\1'))
  end)
  it("writes non-finite numbers as null", function()
    assert.are.equal("null", json.encode(math.huge))
  end)
end)
