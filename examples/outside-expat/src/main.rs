//! A user's crate that depends on `sandlink-expat` and nothing else: it
//! parses a document with the expat embedded in that crate, in a sandbox,
//! and checks every event. No path, no system library, no build step of
//! its own. Exits with status 1 (and says why) if an event differs.

use std::process::ExitCode;

use sandlink_expat::{Event, Flow, Handler, OwnedEvent, Parser};

/// Keeps every event.
struct Record(Vec<OwnedEvent>);

impl Handler for Record {
    fn handle(&mut self, e: Event<'_>) -> Flow {
        // A malformed attribute list fails the parse with the full error.
        match e.into_owned() {
            Ok(e) => {
                self.0.push(e);
                Flow::Continue
            }
            Err(_) => Flow::Abort,
        }
    }
}

const DOC: &str = r#"<?xml version="1.0"?>
<!DOCTYPE note [<!ENTITY who "the sandbox">]>
<note lang="en"><to>&who;</to><!-- a comment --><body>x &lt; y</body></note>"#;

fn main() -> ExitCode {
    match run() {
        Ok(()) => {
            println!("outside-expat: the sandboxed parser's events are as expected");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("outside-expat: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let expat = sandlink_expat::sandboxed()?;
    let mut parser = Parser::new(&expat, Record(Vec::new()))?;
    parser.parse(DOC.as_bytes())?;
    let events = parser.into_handler()?.0;
    let mut seen: Vec<String> = Vec::new();
    for e in &events {
        let line = match e {
            OwnedEvent::StartElement { name, attributes } => {
                let attrs: Vec<String> = attributes
                    .iter()
                    .map(|(k, v)| format!(" {k}={v}"))
                    .collect();
                format!("<{name}{}>", attrs.concat())
            }
            OwnedEvent::EndElement { name } => format!("</{name}>"),
            OwnedEvent::Characters(t) => {
                // expat may split a run of text; join adjacent pieces.
                if let Some(last) = seen.last_mut().filter(|l| l.starts_with('"')) {
                    last.pop();
                    last.push_str(t);
                    last.push('"');
                    continue;
                }
                format!("\"{t}\"")
            }
            OwnedEvent::Comment(c) => format!("<!--{c}-->"),
            _ => continue,
        };
        seen.push(line);
    }
    let expected = [
        "<note lang=en>",
        "<to>",
        "\"the sandbox\"",
        "</to>",
        "<!-- a comment -->",
        "<body>",
        "\"x < y\"",
        "</body>",
        "</note>",
    ];
    if seen != expected {
        return Err(format!("events differ:\n  got      {seen:?}\n  expected {expected:?}").into());
    }
    Ok(())
}
