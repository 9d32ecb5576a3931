-- Subscribing to several topics: in one SUBSCRIBE with a table (ESP8266 style), and one at a
-- time chained through the SUBACK callbacks (ESP32's mqtt_helpers.lua style). Both work in
-- tern; completion callbacks are per call there, so plain calls in a row would work too.
--
--   tern run examples/lua/subscribe_many.lua [host [port]]
--
-- Environment: MQTT_HOST, MQTT_PORT (default 127.0.0.1:1883).

local host = arg[1] or os.getenv("MQTT_HOST") or "127.0.0.1"
local port = tonumber(arg[2] or os.getenv("MQTT_PORT") or "1883")

-- In the manner of NodeMCU's lua_examples/mqtt/mqtt_helpers.lua: one topic at a time, the
-- next from the previous one's callback, then cb(client) after the last.
function subscribe_multi(client, topics, cb)
  local topic, qos = next(topics)
  local function subscribe_cb(c)
    print("subscribed to " .. topic)
    topic, qos = next(topics, topic)
    if topic == nil then
      if cb then cb(c) end
    else
      c:subscribe(topic, qos, subscribe_cb)
    end
  end
  client:subscribe(topic, qos, subscribe_cb)
end

function unsubscribe_multi(client, topics, cb)
  local topic = next(topics)
  local function unsubscribe_cb(c)
    print("unsubscribed from " .. topic)
    topic = next(topics, topic)
    if topic == nil then
      if cb then cb(c) end
    else
      c:unsubscribe(topic, unsubscribe_cb)
    end
  end
  client:unsubscribe(topic, unsubscribe_cb)
end

local in_one_packet = { ["/many/a"] = 0, ["/many/b"] = 1 }
local chained = { ["/many/c"] = 2, ["/many/d"] = 1 }
local expected, received = 4, 0

m = mqtt.Client("subscribe-many", 60)

m:on("message", function(client, topic, data)
  print("message " .. topic .. " " .. data)
  received = received + 1
  if received == expected then
    unsubscribe_multi(client, chained, function(c)
      c:unsubscribe(in_one_packet, function(c2)
        print("unsubscribed from the table")
        c2:close()
      end)
    end)
  end
end)

m:connect(host, port, 0, function(client)
  client:subscribe(in_one_packet, function(c)
    print("subscribed to the table")
    subscribe_multi(c, chained, function(c2)
      print("all subscribed")
      for _, t in ipairs({ "/many/a", "/many/b", "/many/c", "/many/d" }) do
        c2:publish(t, "hi", 1, 0)
      end
    end)
  end)
end, function(client, reason)
  print("failed reason: " .. reason)
end)
