//! Runs Lua snippets in a [`Runtime`] on a paused tokio clock, so timer tests are exact and
//! instant. Scripts record what happened with `emit(...)`, collected into a `Vec<String>`.

#![allow(dead_code)]

use std::time::Duration;

use mlua::Table;
use tern_lua::{RunError, Runtime};

const PRELUDE: &str = r##"
out = {}
function emit(...)
  local t = {}
  for i = 1, select("#", ...) do t[i] = tostring((select(i, ...))) end
  out[#out + 1] = table.concat(t, " ")
end
"##;

/// Runs `script` to completion (the loop going idle); returns the result and the emitted lines.
pub(crate) fn run(script: &str) -> (Result<(), RunError>, Vec<String>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let mut lua = Runtime::new().expect("a Lua runtime");
        lua.exec(PRELUDE, "prelude").expect("the prelude runs");
        let result = match lua.exec(script, "test") {
            Ok(()) => tokio::time::timeout(Duration::from_secs(24 * 3600), lua.run())
                .await
                .expect("the loop did not go idle within a virtual day"),
            Err(e) => Err(e),
        };
        let out: Table = lua.lua().globals().get("out").expect("the out table");
        let lines = out
            .sequence_values::<String>()
            .map(|v| v.expect("emitted lines are strings"))
            .collect();
        (result, lines)
    })
}

/// Runs `script`, which must succeed; returns the emitted lines.
pub(crate) fn run_ok(script: &str) -> Vec<String> {
    let (result, lines) = run(script);
    if let Err(e) = result {
        panic!("script failed: {e}\nemitted so far: {lines:?}");
    }
    lines
}

/// Runs `script`, which must fail; returns the error text.
pub(crate) fn run_err(script: &str) -> String {
    match run(script) {
        (Err(e), _) => e.to_string(),
        (Ok(()), lines) => panic!("script succeeded, emitted {lines:?}"),
    }
}
