//! NodeMCU runtime.
