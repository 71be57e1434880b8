//! Turns results into what people and programs read: text (colour only where the terminal
//! takes it), JSON (versioned) and Markdown. Decides nothing; never does I/O beyond writing.

pub mod diagnostics;
pub mod plan;
pub mod reason;
pub mod shift;
pub mod style;
pub mod verify;
