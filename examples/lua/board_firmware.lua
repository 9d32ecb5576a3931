-- A NodeMCU firmware in the style of public home-automation projects, for `tern run --sim`:
--   * keeps its settings in settings.json in flash (written on first boot from the command
--     line's broker address, read back on every boot) and the LED's state with them;
--   * joins Wi-Fi, and connects to MQTT (with a last will) when it has an address;
--   * drives an LED from messages on <base>/led ("on"/"off") and reports its state;
--   * publishes a button press (an interrupt on a pulled-up input) on <base>/button;
--   * publishes the DHT and ADC readings as JSON (sjson) on <base>/sensors every `period` ms;
--   * restarts on a message on <base>/restart (the LED comes back as it was);
--   * survives the access point going away and coming back (its own reconnect logic).
--
--   tern run --sim examples/lua/board.json --trace all --fs /tmp/flash \
--     examples/lua/board_firmware.lua 127.0.0.1 1883
--
-- Without --fs the flash is the script's directory: settings.json is written beside it.

local SETTINGS = "settings.json"

local function load_settings()
  local f = file.open(SETTINGS, "r")
  if not f then return nil end
  local text = ""
  repeat
    local chunk = f:read()
    if chunk then text = text .. chunk end
  until not chunk
  f:close()
  local ok, cfg = pcall(sjson.decode, text)
  if ok and type(cfg) == "table" then return cfg end
  print("settings unreadable, using defaults")
  return nil
end

local function save_settings(cfg)
  local f = file.open(SETTINGS, "w")
  if not f then print("cannot write " .. SETTINGS) return end
  f:write(sjson.encode(cfg))
  f:close()
end

local cfg = load_settings()
if cfg then
  print("settings loaded")
else
  cfg = {
    ssid = "tern", pwd = "password123",
    broker = arg[1] or "127.0.0.1", port = tonumber(arg[2]) or 1883,
    id = "node1", base = "home/node1",
    led = 4, button = 3, dht = 5,
    period = tonumber(arg[3]) or 1000,
    led_on = false,
  }
  save_settings(cfg)
  print("settings written")
end

local status_topic = cfg.base .. "/status"
local led_topic = cfg.base .. "/led"
local restart_topic = cfg.base .. "/restart"

gpio.mode(cfg.led, gpio.OUTPUT)
gpio.write(cfg.led, cfg.led_on and gpio.HIGH or gpio.LOW)
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
    c:subscribe({[led_topic] = 1, [restart_topic] = 1})
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
  if topic == restart_topic then
    print("restarting")
    node.restart()
  elseif topic == led_topic then
    cfg.led_on = data == "on"
    gpio.write(cfg.led, cfg.led_on and gpio.HIGH or gpio.LOW)
    save_settings(cfg)
    print("led " .. tostring(data))
    c:publish(led_topic .. "/state", cfg.led_on and "on" or "off", 1, 0)
  end
end)

gpio.trig(cfg.button, "down", function(level, when)
  print("button " .. level)
  if state == "up" then m:publish(cfg.base .. "/button", "pressed", 1, 0) end
end)

tmr.create():alarm(cfg.period, tmr.ALARM_AUTO, function()
  if state ~= "up" then return end
  local status, temp, humi = dht.read(cfg.dht)
  if status ~= dht.OK then return end
  m:publish(cfg.base .. "/sensors", sjson.encode({temp = temp, humi = humi, adc = adc.read(0)}), 0, 0)
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
