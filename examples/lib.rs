//! Examples of mqtrace: see `README.md` in this folder. This crate has no library code.
