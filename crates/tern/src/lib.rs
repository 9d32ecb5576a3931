//! MQTT client.
