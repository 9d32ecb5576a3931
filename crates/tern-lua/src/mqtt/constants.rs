//! `mqtt.CONN_FAIL_*` and `mqtt.CONNACK_*`: the seed's connection-failure reason codes.

/// Every constant the seed's table lists, with its value.
pub const REASON_CODES: [(&str, i32); 11] = [
    ("CONN_FAIL_SERVER_NOT_FOUND", -5),
    ("CONN_FAIL_NOT_A_CONNACK_MSG", -4),
    ("CONN_FAIL_DNS", -3),
    ("CONN_FAIL_TIMEOUT_RECEIVING", -2),
    ("CONN_FAIL_TIMEOUT_SENDING", -1),
    ("CONNACK_ACCEPTED", 0),
    ("CONNACK_REFUSED_PROTOCOL_VER", 1),
    ("CONNACK_REFUSED_ID_REJECTED", 2),
    ("CONNACK_REFUSED_SERVER_UNAVAILABLE", 3),
    ("CONNACK_REFUSED_BAD_USER_OR_PASS", 4),
    ("CONNACK_REFUSED_NOT_AUTHORIZED", 5),
];

/// Installs the constants into the module table.
pub(crate) fn install(module: &mlua::Table) -> mlua::Result<()> {
    for (name, value) in REASON_CODES {
        module.raw_set(name, value)?;
    }
    Ok(())
}
