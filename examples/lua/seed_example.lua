-- The seed's example (docs/modules/mqtt.md), run with `tern run`:
--
--   tern run examples/lua/seed_example.lua [host [port]]
--
-- Differences from the original: the broker address comes from arg[1]/arg[2] or the
-- environment (MQTT_HOST, MQTT_PORT; default 127.0.0.1:1883), and the client closes after
-- the first message so the script ends (the original calls m:close() right after
-- m:connect(), which on a PC would end the attempt before it could connect).

local host = arg[1] or os.getenv("MQTT_HOST") or "127.0.0.1"
local port = tonumber(arg[2] or os.getenv("MQTT_PORT") or "1883")

-- init mqtt client without logins, keepalive timer 120s
m = mqtt.Client("clientid", 120)

-- init mqtt client with logins, keepalive timer 120sec
m = mqtt.Client("clientid", 120, "user", "password")

-- setup Last Will and Testament (optional)
-- Broker will publish a message with qos = 0, retain = 0, data = "offline"
-- to topic "/lwt" if client don't send keepalive packet
m:lwt("/lwt", "offline", 0, 0)

m:on("connect", function(client) print ("connected") end)
m:on("offline", function(client) print ("offline") end)

-- on publish message receive event
m:on("message", function(client, topic, data)
  print(topic .. ":" )
  if data ~= nil then
    print(data)
  end
  -- (tern) done: close, so the script ends once 'offline' has fired
  client:close()
end)

-- for TLS: m:connect("192.168.11.118", secure-port, 1)
m:connect(host, port, 0, function(client)
  print("connected")
  -- Calling subscribe/publish only makes sense once the connection
  -- was successfully established. You can do that either here in the
  -- 'connect' callback or you need to otherwise make sure the
  -- connection was established (e.g. tracking connection status or in
  -- m:on("connect", function)).

  -- subscribe topic with qos = 0
  client:subscribe("/topic", 0, function(client) print("subscribe success") end)
  -- publish a message with data = hello, QoS = 0, retain = 0
  client:publish("/topic", "hello", 0, 0, function(client) print("sent") end)
end,
function(client, reason)
  print("failed reason: " .. reason)
end)

-- m:close();
-- you can call m:connect again
