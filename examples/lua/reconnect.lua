-- The seed's advice for a consistent connection, made runnable: no autoreconnect; on a
-- failed connect (fail_cb) or a lost connection ('offline'), try again from a tmr timer.
--
--   tern run examples/lua/reconnect.lua [host [port]]
--
-- Environment: MQTT_HOST, MQTT_PORT (default 127.0.0.1:1883); RETRY_MS, the delay before
-- each new attempt (default 10000, the seed's 10 * 1000); CONNECTIONS, stop (close and
-- end) after this many successful connections (default: run forever).

local host = arg[1] or os.getenv("MQTT_HOST") or "127.0.0.1"
local port = tonumber(arg[2] or os.getenv("MQTT_PORT") or "1883")
local retry_ms = tonumber(os.getenv("RETRY_MS") or "10000")
local stop_after = tonumber(os.getenv("CONNECTIONS") or "0")

-- The seed's snippet uses a global named `mqtt` for the client, which would hide the
-- module; `m` it is.
m = mqtt.Client("reconnect-example", 60)

local connections = 0
local finished = false

function handle_mqtt_error(client, reason)
  print("failed reason: " .. reason)
  tmr.create():alarm(retry_ms, tmr.ALARM_SINGLE, do_mqtt_connect)
end

function do_mqtt_connect()
  -- The seed's short form connect(host, conn_cb, fail_cb); the port travels in a URI.
  m:connect("mqtt://" .. host .. ":" .. port, function(client)
    connections = connections + 1
    print("connected " .. connections)
    client:publish("/reconnect", "hello " .. connections, 1, 0, function(c)
      print("sent " .. connections)
      if stop_after > 0 and connections >= stop_after then
        finished = true
        c:close()
      end
    end)
  end, handle_mqtt_error)
end

m:on("offline", function(client)
  print("offline")
  if not finished then
    tmr.create():alarm(retry_ms, tmr.ALARM_SINGLE, do_mqtt_connect)
  end
end)

do_mqtt_connect()
