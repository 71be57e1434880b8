//! Colour for human output. Styling is always applied; `anstream` strips it when the stream is
//! not a terminal, under NO_COLOR, or with --color never.

use owo_colors::OwoColorize;

pub fn error(text: &str) -> String {
    text.red().bold().to_string()
}
pub fn warning(text: &str) -> String {
    text.yellow().bold().to_string()
}
pub fn success(text: &str) -> String {
    text.green().bold().to_string()
}
pub fn dim(text: &str) -> String {
    text.dimmed().to_string()
}
pub fn bold(text: &str) -> String {
    text.bold().to_string()
}
pub fn added(text: &str) -> String {
    text.green().to_string()
}
pub fn removed(text: &str) -> String {
    text.red().to_string()
}
pub fn changed(text: &str) -> String {
    text.yellow().to_string()
}
pub fn hint(text: &str) -> String {
    text.cyan().to_string()
}
