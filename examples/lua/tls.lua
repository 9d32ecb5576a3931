-- TLS with the seed's `secure` table: the broker is verified against a CA certificate read
-- from a file; a client certificate and key are added for mutual TLS when given.
--
--   tern run examples/lua/tls.lua [host [port [ca.pem]]]
--
-- Environment: MQTT_HOST (default localhost), MQTT_PORT (default 8883), MQTT_CA (the CA
-- file, required unless given as arg[3]), MQTT_CERT and MQTT_KEY (client certificate and
-- key files, optional).

local host = arg[1] or os.getenv("MQTT_HOST") or "localhost"
local port = tonumber(arg[2] or os.getenv("MQTT_PORT") or "8883")
local ca_path = arg[3] or os.getenv("MQTT_CA")
local cert_path, key_path = os.getenv("MQTT_CERT"), os.getenv("MQTT_KEY")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("*a")
  f:close()
  return data
end

assert(ca_path, "give the CA certificate file as arg[3] or MQTT_CA")
local secure = { ca_cert = read(ca_path) }
if cert_path and key_path then
  secure.client_cert = read(cert_path)
  secure.client_key = read(key_path)
end

m = mqtt.Client("tls-example", 60)

m:on("message", function(client, topic, data)
  print(topic .. ": " .. data)
  client:close()
end)
m:on("offline", function(client) print("offline") end)

m:connect(host, port, secure, function(client)
  print("connected over TLS")
  client:subscribe("/tls", 1, function(c)
    c:publish("/tls", "hello, privately", 1, 0)
  end)
end, function(client, reason, message)
  print("failed reason: " .. reason)
  print(message)
end)
