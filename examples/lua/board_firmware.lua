-- A NodeMCU firmware in the style of public home-automation projects, for `tern run --sim`:
--   * joins Wi-Fi, and connects to MQTT (with a last will) when it has an address;
--   * drives an LED from messages on <base>/led ("on"/"off") and reports its state;
--   * publishes a button press (an interrupt on a pulled-up input) on <base>/button;
--   * publishes the DHT and ADC readings as JSON on <base>/sensors every `period` ms;
--   * survives the access point going away and coming back (its own reconnect logic).
--
--   tern run --sim examples/lua/board.json --trace gpio,wifi examples/lua/board_firmware.lua 127.0.0.1 1883
--
-- Settings are in the table below (a device would read them from a file in flash). The JSON
-- is written with string.format, as small firmwares without sjson do.

local cfg = {
  ssid = "tern", pwd = "password123",
  broker = arg[1] or "127.0.0.1", port = tonumber(arg[2]) or 1883,
  id = "node1", base = "home/node1",
  led = 4, button = 3, dht = 5,
  period = tonumber(arg[3]) or 1000,
}

local status_topic = cfg.base .. "/status"
local led_topic = cfg.base .. "/led"

gpio.mode(cfg.led, gpio.OUTPUT)
gpio.write(cfg.led, gpio.LOW)
gpio.mode(cfg.button, gpio.INT, gpio.PULLUP)

local m = mqtt.Client(cfg.id, 60)
m:lwt(status_topic, "offline", 1, 1)

local state = "idle"   -- idle, connecting, up
local connect

local function retry()
  -- Only with an address; the STA_GOT_IP handler connects again otherwise.
  if wifi.sta.getip() then
    tmr.create():alarm(500, tmr.ALARM_SINGLE, function() connect() end)
  end
end

connect = function()
  if state ~= "idle" then return end
  state = "connecting"
  m:connect(cfg.broker, cfg.port, false, function(c)
    state = "up"
    print("mqtt up")
    c:publish(status_topic, "online", 1, 1)
    c:subscribe(led_topic, 1)
  end, function(c, reason)
    state = "idle"
    print("mqtt failed " .. reason)
    retry()
  end)
end

m:on("offline", function()
  state = "idle"
  print("mqtt offline")
  retry()
end)

m:on("message", function(c, topic, data)
  if topic ~= led_topic then return end
  if data == "on" then gpio.write(cfg.led, gpio.HIGH) else gpio.write(cfg.led, gpio.LOW) end
  print("led " .. tostring(data))
  c:publish(led_topic .. "/state", data == "on" and "on" or "off", 1, 0)
end)

gpio.trig(cfg.button, "down", function(level, when)
  print("button " .. level)
  if state == "up" then m:publish(cfg.base .. "/button", "pressed", 1, 0) end
end)

tmr.create():alarm(cfg.period, tmr.ALARM_AUTO, function()
  if state ~= "up" then return end
  local status, temp, humi = dht.read(cfg.dht)
  if status ~= dht.OK then return end
  m:publish(cfg.base .. "/sensors",
    string.format('{"temp":%.1f,"humi":%.1f,"adc":%d}', temp, humi, adc.read(0)), 0, 0)
end)

wifi.setmode(wifi.STATION)
wifi.eventmon.register(wifi.eventmon.STA_GOT_IP, function(t)
  print("wifi up " .. t.IP)
  connect()
end)
wifi.eventmon.register(wifi.eventmon.STA_DISCONNECTED, function(t)
  print("wifi down " .. t.reason)
end)
wifi.sta.config({ssid = cfg.ssid, pwd = cfg.pwd})
