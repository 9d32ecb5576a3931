//! `sjson` and `cjson` under `tern run`: a sensor reading encoded, published through a real
//! mosquitto and decoded from the message (the streaming decoder too), NodeMCU's array and
//! object rules, and the devices' error texts.

mod run_support;

use run_support::run_src;
use tern_testkit::Mosquitto;

#[test]
fn a_reading_goes_through_the_broker_as_json_and_back() {
    let broker = Mosquitto::start_default();
    let r = run_src(
        r#"
        local m = mqtt.Client("json-loop", 60)
        m:on("message", function(c, topic, data)
          print(data)
          local t = sjson.decode(data)
          print(t.temp, t.hum, t.ok, #t.pins, t.pins[2], t.note == sjson.NULL)
          local d = sjson.decoder()
          print(d:write(data:sub(1, 10)))
          print(d:write(data:sub(11)).temp)
          local c2 = cjson.decode(data)
          print(c2.hum, cjson.encode(c2.pins))
          c:close()
        end)
        m:connect("127.0.0.1", tonumber(arg[1]), function(c)
          c:subscribe("/json/reading", 1, function(c)
            c:publish("/json/reading", sjson.encode({temp = 21.5, hum = 45, ok = true,
              pins = {1, 0, 1}, note = sjson.NULL}), 1, 0)
          end)
        end)
        "#,
        &[&broker.port().to_string()],
    );
    r.assert_ok();
    let lines = r.lines();
    assert_eq!(lines.len(), 5, "{r}");
    // Object key order is the table's; check the members instead of the text.
    let json: Vec<&str> = lines[0]
        .trim_start_matches('{')
        .trim_end_matches('}')
        .split(",\"")
        .collect();
    let mut members: Vec<String> = json
        .iter()
        .map(|m| m.trim_start_matches('"').to_owned())
        .collect();
    members.sort();
    assert_eq!(
        members,
        [
            "hum\":45",
            "note\":null",
            "ok\":true",
            "pins\":[1,0,1]",
            "temp\":21.5"
        ],
        "{r}"
    );
    assert_eq!(lines[1], "21.5\t45\ttrue\t3\t0\ttrue", "{r}");
    assert_eq!(lines[2], "", "an incomplete document gives nothing\n{r}");
    assert_eq!(lines[3], "21.5", "{r}");
    assert_eq!(lines[4], "45\t[1,0,1]", "{r}");
}

#[test]
fn array_and_object_rules_of_each_module() {
    let r = run_src(
        r#"
        print(sjson.encode({}), cjson.encode({}))
        print(sjson.encode({[1] = "a", [3] = "c"}))
        print(sjson.encode({list = {}, n = {[2] = 2}}):find('"list":[]', 1, true) ~= nil)
        print(cjson.encode({1, "two", false}), cjson.encode(nil), cjson.encode(1.5))
        print(sjson.encode({"tab\tquote\"back\\"}))
        "#,
        &[],
    );
    r.assert_ok().assert_lines(&[
        "[]\t{}",
        r#"["a",null,"c"]"#,
        "true",
        "[1,\"two\",false]\tnull\t1.5",
        r#"["tab\tquote\"back\\"]"#,
    ]);
}

#[test]
fn invalid_json_raises_the_devices_errors() {
    let r = run_src(
        r#"
        print(pcall(sjson.decode, '{"a": 1'))
        print((select(2, pcall(sjson.decode, '{"a": nope}'))):match("^JSON parse error: ") ~= nil)
        print(pcall(cjson.decode, '[1, x]'))
        print(pcall(sjson.encode, 5))
        local d = sjson.decoder()
        print(pcall(d.write, d, '[1,,'))
        print(pcall(d.write, d, '2]'))
        print(pcall(d.result, sjson.decoder()))
        sjson.decode("{oops")
        "#,
        &[],
    );
    r.assert_code(1).assert_lines(&[
        "false\tIncomplete JSON object passed to sjson.decode",
        "true",
        "false\tExpected value but found invalid token at character 5",
        "false\tbad argument #1 to 'encode' (table expected, got number)",
        "false\tJSON parse error: expected value at line 1 column 4",
        "false\tJSON parse error: previous call",
        "false\tdecode not complete",
    ]);
    assert!(r.stderr.contains(":10: JSON parse error: "), "{r}");
    assert!(r.stderr.contains("stack traceback:"), "{r}");
}
