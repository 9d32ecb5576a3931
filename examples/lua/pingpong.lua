-- Round trips through the broker: the client subscribes to a topic and, from its message
-- callback, publishes the next message to it, COUNT times; then prints the time taken and
-- the mean round trip. A measure of `tern run` itself: each reply leaves in the same write
-- as the PUBACK of the message that caused it.
--
--   tern run examples/lua/pingpong.lua [host [port [count [qos]]]]
--
-- Environment: MQTT_HOST, MQTT_PORT (default 127.0.0.1:1883).

local host = arg[1] or os.getenv("MQTT_HOST") or "127.0.0.1"
local port = tonumber(arg[2] or os.getenv("MQTT_PORT") or "1883")
local count = tonumber(arg[3] or "10000")
local qos = tonumber(arg[4] or "1")
local topic = "/pingpong/" .. tostring(tmr.now())

local received, started = 0, nil

m = mqtt.Client("pingpong-" .. tostring(tmr.now()), 60)

m:on("message", function(client, t, data)
  received = received + 1
  if received < count then
    client:publish(topic, data, qos, 0)
    return
  end
  local secs = (tmr.now() - started) / 1e6
  print(string.format("%d round trips at QoS %d in %.3f s, %.1f us each",
    count, qos, secs, secs * 1e6 / count))
  client:close()
end)

m:connect(host, port, false, function(client)
  client:subscribe(topic, qos, function(c)
    started = tmr.now()
    c:publish(topic, "ping", qos, 0)
  end)
end, function(client, reason)
  print("failed reason: " .. reason)
end)
